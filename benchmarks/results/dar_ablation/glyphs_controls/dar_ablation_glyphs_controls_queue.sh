#!/bin/bash
# The control runs of issue #18 in priority order (each step reuses the cache of the ones before).
# Run from the repository root: nohup bash benchmarks/results/dar_ablation/glyphs_controls/dar_ablation_glyphs_controls_queue.sh &
export PYTHONPATH=$PWD/src
COMMON="--datasets glyphs --bases proxyanchor --baseline-lrs 0.01 --dar-at-baseline-lr --seeds 5 --threads 1 --cache benchmarks/results/dar_ablation/cache --no-plots"
NARROW="--differences signed --measures l2sq --estimators exact --finalists 1"
LOG=benchmarks/results/dar_ablation/glyphs_controls/dar_ablation_log_glyphs_controls.txt
# 1. compact_inter near DAR's optimum first (lambda 1, 3, 10, as DAR's top), then its finals
nice -n 5 .venv/bin/python -m benchmarks.dar_ablation $COMMON $NARROW --lambdas 1 3 10 --extend-edges 2 \
  --controls compact_inter --name dar_ablation_glyphs_controls_step1 >> $LOG 2>&1
# 2. within_scatter and batch_variance the same way
nice -n 5 .venv/bin/python -m benchmarks.dar_ablation $COMMON $NARROW --lambdas 1 3 10 --extend-edges 2 \
  --controls within_scatter batch_variance --name dar_ablation_glyphs_controls_step2 >> $LOG 2>&1
# 3. the full two-stage grid of DAR (0.01 0.1 1, then 0.03 0.3 3, edges) for every control;
# a control's lambda is the best over every value it was trained at (steps 1-2 included)
nice -n 5 .venv/bin/python -m benchmarks.dar_ablation $COMMON $NARROW --lambdas 0.01 0.1 1 \
  --tune-lambdas 0.03 0.3 3 --extend-edges 2 --cached-lambdas 10 30 100 \
  --controls compact_inter within_scatter batch_variance \
  --name dar_ablation_glyphs_controls >> $LOG 2>&1
# 4. seeds 5-9 of the controls' finals (DAR's and the baseline's are cached), as the 10-seed table
nice -n 5 .venv/bin/python -m benchmarks.dar_ablation $COMMON $NARROW --lambdas 0.01 0.1 1 \
  --tune-lambdas 0.03 0.3 3 --extend-edges 2 --cached-lambdas 10 30 100 \
  --controls compact_inter within_scatter batch_variance \
  --seeds 10 --final-seeds 5 6 7 8 9 --name dar_ablation_glyphs_controls_10seeds >> $LOG 2>&1
