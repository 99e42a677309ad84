#!/bin/bash
# Issue #18 (2026-12-07): DAR beyond the poster's two base losses on the glyphs testbed (96
# training characters, 400 steps): per base, its learning rate over the config's 1e-3 and
# ProxyAnchor's tuned 1e-2, then DAR (signed l2sq exact, at the baseline's lr) and the
# compact_inter control, each lambda-screened over 0.1 1 3 10 (edges extended twice), finals
# on 3 seeds, then more (the cache makes each later step reuse the earlier ones).
# From the repository root: nohup bash benchmarks/results/dar_ablation/glyphs/dar_ablation_glyphs_bases_queue.sh &
export PYTHONPATH=$PWD/src
COMMON="--datasets glyphs --baseline-lrs 0.001 0.01 --dar-at-baseline-lr --threads 1 --cache benchmarks/results/dar_ablation/cache --no-plots"
GRID="--differences signed --measures l2sq --estimators exact --finalists 1 --lambdas 0.1 1 3 10 --extend-edges 2 --controls compact_inter"
LOG=benchmarks/results/dar_ablation/glyphs/dar_ablation_log_glyphs_bases.txt
bases() {  # BASE SEEDS [FINAL SEEDS...]
  local base=$1 seeds=$2; shift 2
  .venv/bin/python -m benchmarks.dar_ablation $COMMON $GRID --bases $base --seeds $seeds \
    ${1:+--final-seeds "$@"} --name dar_ablation_glyphs_bases_$base >> $LOG 2>&1
}
# On 2026-12-07 only the first two lines ran (MultiSimilarity, seeds 0-3), then the time went
# to the regime that does not memorize (dar_ablation_glyphs_nomem_queue.sh, ROLE=control).
bases multisimilarity 3
bases multisimilarity 5 3
bases multisimilarity 5 4
bases arcface 3
bases contrastive 3
bases supcon 3
