#!/bin/bash
# Issue #18, the long runs on ProxyAnchor (2026-12-07), in priority order; each step reuses the
# cache of the ones before. From the repository root:
#   nohup bash benchmarks/results/dar_ablation/glyphs/dar_ablation_glyphs_evidence1_queue.sh &
export PYTHONPATH=$PWD/src
COMMON="--datasets glyphs --bases proxyanchor --baseline-lrs 0.01 --dar-at-baseline-lr --seeds 5 --threads 1 --cache benchmarks/results/dar_ablation/cache --no-plots"
NARROW="--differences signed --measures l2sq --estimators exact --finalists 1"
LOG=benchmarks/results/dar_ablation/glyphs/dar_ablation_log_glyphs_evidence1.txt
# a. seeds 5-9 of the controls' finals (step 4 of dar_ablation_glyphs_controls_queue.sh)
.venv/bin/python -m benchmarks.dar_ablation $COMMON $NARROW --lambdas 0.01 0.1 1 \
  --tune-lambdas 0.03 0.3 3 --extend-edges 2 --cached-lambdas 10 30 100 \
  --controls compact_inter within_scatter batch_variance \
  --seeds 10 --final-seeds 5 6 7 8 9 --name dar_ablation_glyphs_controls_10seeds >> $LOG 2>&1
# b. within_scatter on the tuned ProxyAnchor, seeds 1-4 (step 4 of dar_ablation_glyphs_tunedpa_queue.sh)
TUNED="--datasets glyphs --bases proxyanchor --base-grid alpha=8,16,64 margin=0,0.2,0.4 --baseline-lrs 0.01 --dar-at-baseline-lr --seeds 5 --threads 1 --cache benchmarks/results/dar_ablation/cache --no-plots"
GRID="--differences signed --measures l2sq --estimators exact --finalists 1 --lambdas 0.01 0.1 1 --tune-lambdas 0.03 0.3 3 --extend-edges 2"
.venv/bin/python -m benchmarks.dar_ablation $TUNED $GRID --controls compact_inter within_scatter \
  --name dar_ablation_glyphs_tunedpa_controls >> $LOG 2>&1
# c. the regime that does not memorize (its own queue file, read when this step starts): the
# DAR role here; the control role ran beside it in the place of dar_ablation_glyphs_bases_queue.sh
ROLE=dar bash benchmarks/results/dar_ablation/glyphs_nomem/dar_ablation_glyphs_nomem_queue.sh
