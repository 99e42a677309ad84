#!/bin/bash
# Issue #18 (2026-12-08): ArcFace and SupCon at PML's defaults and tuned as hard as lambda
# (dar_ablation_glyphs_tuned_queue.sh, ROLE=t) in one table each, from the cache alone (no
# training): DAR and compact_inter on each, and every cell against the tuned base. From the
# repository root:
#   bash benchmarks/results/dar_ablation/glyphs/dar_ablation_glyphs_tuned_report.sh
export PYTHONPATH=$PWD/src
CACHE=${DASL_ABLATION_CACHE:-benchmarks/results/dar_ablation/cache}
for pair in arcface:arcface~scale8 supcon:supcon~temperature0.2; do
  base=${pair%%:*} tuned=${pair#*:}
  .venv/bin/python -m benchmarks.dar_ablation --datasets glyphs --bases $base $tuned \
    --baseline-lrs 0.01 --dar-at-baseline-lr --seeds 3 --differences signed --measures l2sq \
    --estimators exact --finalists 1 --lambdas 0.1 1 3 10 --extend-edges 2 --controls compact_inter \
    --cache "$CACHE" --name dar_ablation_glyphs_tuned_${base}_vs_default --report-only --no-plots \
    --contrast $tuned/baseline $base/baseline \
    --contrast $base/signed/l2sq/exact $tuned/baseline \
    --contrast $base/control/compact_inter $tuned/baseline
done
