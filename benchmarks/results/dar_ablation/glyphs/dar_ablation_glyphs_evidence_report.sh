#!/bin/bash
# The issue #18 tables of 2026-12-07 from the caches alone (no training; each a few seconds of
# CPU): (1) ProxyAnchor, 10 seeds of the default base, DAR and the three controls, the tuned
# base (5 seeds) with DAR and controls on it; (2) the other base losses; (3) the regime that
# does not memorize. From the repository root:
#   bash benchmarks/results/dar_ablation/glyphs/dar_ablation_glyphs_evidence_report.sh
export PYTHONPATH=$PWD/src
NAME=dar_ablation_glyphs_issue18_10seeds bash benchmarks/results/dar_ablation/glyphs_issue18/dar_ablation_glyphs_issue18_report.sh --seeds 10
for base in multisimilarity arcface contrastive supcon; do
  [ -d benchmarks/results/dar_ablation/cache/glyphs ] || break
  ls benchmarks/results/dar_ablation/cache/glyphs/${base}__baseline__* >/dev/null 2>&1 || continue
  .venv/bin/python -m benchmarks.dar_ablation --datasets glyphs --bases $base --baseline-lrs 0.001 0.01 \
    --dar-at-baseline-lr --seeds 5 --differences signed --measures l2sq --estimators exact \
    --finalists 1 --lambdas 0.1 1 3 10 --extend-edges 2 --controls compact_inter \
    --cache benchmarks/results/dar_ablation/cache --name dar_ablation_glyphs_bases_$base \
    --report-only --no-plots
done
.venv/bin/python -m benchmarks.dar_ablation --datasets glyphs --bases proxyanchor --baseline-lrs 0.001 0.01 \
  --dar-at-baseline-lr --seeds 5 --differences signed --measures l2sq --estimators exact \
  --finalists 1 --lambdas 1 3 10 --controls compact_inter within_scatter \
  --cache benchmarks/results/dar_ablation/cache --name dar_ablation_glyphs_nomem \
  --report-only --no-plots data.val_fraction=0.1 trainer.epochs=16 data.batches_per_epoch=25
