#!/usr/bin/env bash
# One-time set-up on a fresh machine: a virtual environment in .venv with dasl and its
# dependencies, and (best effort, as root on Debian) the data of the demos: the font packages
# that the default `dasl train` renders its glyphs from, and the Fashion-MNIST package of the
# `dasl pretrain` demo. Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
VPY=.venv/bin/python
if ! "$VPY" -c "import dasl, torch, torchvision, pytorch_metric_learning, faiss, lightning, fontTools, optuna, optuna_integration, lightly, mypy" >/dev/null 2>&1; then
  "$VPY" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
  # torch and torchvision first, pinned to a pair that imports together (on these machines
  # both come from local disk); then the project with its dev and pretrained extras.
  "$VPY" -m pip install -q "torch==2.14.1" "torchvision==0.29.1" \
    || "$VPY" -m pip install -q torch torchvision
  "$VPY" -m pip install -q -e ".[dev,pretrained]"
fi
# Real data for the pretraining demo. Without it `dasl pretrain` falls back to sklearn's
# digits and says so.
if [ ! -d /usr/share/datasets/fashion-mnist ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  (apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 \
    || (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1)) \
    || echo "note: could not install dataset-fashion-mnist; dasl train will use sklearn digits" >&2
fi
# Font faces of the glyphs dataset, the data of the default `dasl train` demo
# (dasl.data.glyphs_fonts.PACKAGES; about a minute).
FONT_PACKAGES="fonts-noto-core fonts-dejavu-core fonts-dejavu-extra fonts-freefont-ttf \
fonts-liberation2 fonts-urw-base35 fonts-crosextra-carlito fonts-crosextra-caladea fonts-paratype"
# shellcheck disable=SC2086
FONTS_OK=$(dpkg-query -W -f '${db:Status-Status}\n' $FONT_PACKAGES 2>/dev/null | grep -c '^installed$' || true)
if [ "$FONTS_OK" != 9 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  (apt-get install -y -q $FONT_PACKAGES >/dev/null 2>&1 \
    || (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q $FONT_PACKAGES >/dev/null 2>&1)) \
    || echo "note: could not install the font packages; the glyphs dataset needs them" >&2
fi
# Headless Chromium for the test that renders report.html (#16); without it that test skips.
if ! command -v chromium >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  (apt-get install -y -q chromium >/dev/null 2>&1 \
    || (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1)) \
    || echo "note: could not install chromium; the report.html rendering test will skip" >&2
fi
echo "set-up done: .venv ready"
