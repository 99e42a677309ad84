#!/bin/bash
# Issue #18 (2026-12-07): DAR beyond the poster's two base losses on the glyphs testbed (96
# training characters, 400 steps): per base, its learning rate over the config's 1e-3 and
# ProxyAnchor's tuned 1e-2, then DAR (signed l2sq exact, at the baseline's lr) and the
# compact_inter control, each lambda-screened over 0.1 1 3 10 (edges extended), finals on 3
# seeds for every base first, then seeds 3-4 (the cache makes each later step reuse the
# earlier ones), so that a stopped queue leaves whole bases.
# From the repository root: nohup bash benchmarks/results/dar_ablation_glyphs_bases_queue.sh &
export PYTHONPATH=$PWD/src
COMMON="--datasets glyphs --baseline-lrs 0.001 0.01 --dar-at-baseline-lr --threads 1 --cache benchmarks/results/dar_ablation_glyphs_bases_cache --no-plots"
GRID="--differences signed --measures l2sq --estimators exact --finalists 1 --lambdas 0.1 1 3 10 --extend-edges 2 --controls compact_inter"
LOG=benchmarks/results/dar_ablation_log_glyphs_bases.txt
for step in "multisimilarity 3" "arcface 3" "multisimilarity 5" "arcface 5" "contrastive 3" "supcon 3"; do
  set -- $step
  .venv/bin/python -m benchmarks.dar_ablation $COMMON $GRID --bases $1 --seeds $2 \
    --name dar_ablation_glyphs_bases_$1 >> $LOG 2>&1
done
