#!/bin/bash
# The issue #18 tables from the cache alone (no training): untuned and tuned ProxyAnchor, DAR
# (signed l2sq exact) on each, the three compaction controls, paired contrasts. From the
# repository root: bash benchmarks/results/dar_ablation/glyphs_issue18/dar_ablation_glyphs_issue18_report.sh
export PYTHONPATH=$PWD/src
TUNED=${TUNED:-proxyanchor~margin0.4}
.venv/bin/python -m benchmarks.dar_ablation --datasets glyphs --bases proxyanchor $TUNED \
  --baseline-lrs 0.01 --dar-at-baseline-lr --seeds 5 --differences signed --measures l2sq --estimators exact \
  --finalists 1 --lambdas 0.01 0.1 1 --tune-lambdas 0.03 0.3 3 --extend-edges 2 --cached-lambdas 10 30 100 \
  --controls compact_inter within_scatter batch_variance \
  --cache benchmarks/results/dar_ablation/cache --name ${NAME:-dar_ablation_glyphs_issue18} \
  --report-only --no-plots "$@" \
  --contrast $TUNED/baseline proxyanchor/baseline \
  --contrast proxyanchor/signed/l2sq/exact $TUNED/baseline \
  --contrast proxyanchor/control/compact_inter $TUNED/baseline \
  --contrast proxyanchor/control/within_scatter $TUNED/baseline
