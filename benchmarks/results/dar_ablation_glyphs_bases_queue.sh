#!/bin/bash
# Issue #18 (2026-12-07): DAR beyond the poster's two base losses on the glyphs testbed (96
# training characters, 400 steps): per base, its learning rate over the config's 1e-3 and
# ProxyAnchor's tuned 1e-2, then DAR (signed l2sq exact, at the baseline's lr) and the
# compact_inter control, each lambda-screened over 0.1 1 3 10 (edges extended), finals on 5
# seeds. One base per step, in priority order, so that a stopped queue leaves whole bases.
# From the repository root: nohup bash benchmarks/results/dar_ablation_glyphs_bases_queue.sh &
export PYTHONPATH=$PWD/src
COMMON="--datasets glyphs --baseline-lrs 0.001 0.01 --dar-at-baseline-lr --seeds 5 --threads 1 --cache benchmarks/results/dar_ablation_glyphs_bases_cache --no-plots"
GRID="--differences signed --measures l2sq --estimators exact --finalists 1 --lambdas 0.1 1 3 10 --extend-edges 2 --controls compact_inter"
LOG=benchmarks/results/dar_ablation_log_glyphs_bases.txt
for base in multisimilarity arcface contrastive supcon; do
  .venv/bin/python -m benchmarks.dar_ablation $COMMON $GRID --bases $base \
    --name dar_ablation_glyphs_bases_$base >> $LOG 2>&1
done
