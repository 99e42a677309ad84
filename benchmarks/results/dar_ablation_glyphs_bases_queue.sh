#!/bin/bash
# Issue #18 (2026-12-07): DAR beyond the poster's two base losses on the glyphs testbed (96
# training characters, 400 steps): per base, its learning rate over the config's 1e-3 and
# ProxyAnchor's tuned 1e-2, then DAR (signed l2sq exact, at the baseline's lr) and the
# compact_inter control, each lambda-screened over 0.1 1 3 10 (edges extended twice), finals
# on 3 seeds (the cache makes each later step reuse the earlier ones). Between the steps, seed 2
# of the non-memorizing regime (dar_ablation_glyphs_nomem_queue.sh), once its screen is done.
# From the repository root: nohup bash benchmarks/results/dar_ablation_glyphs_bases_queue.sh &
export PYTHONPATH=$PWD/src
COMMON="--datasets glyphs --baseline-lrs 0.001 0.01 --dar-at-baseline-lr --threads 1 --cache benchmarks/results/dar_ablation_glyphs_bases_cache --no-plots"
GRID="--differences signed --measures l2sq --estimators exact --finalists 1 --lambdas 0.1 1 3 10 --extend-edges 2 --controls compact_inter"
LOG=benchmarks/results/dar_ablation_log_glyphs_bases.txt
bases() {  # BASE SEEDS [FINAL SEEDS...]
  local base=$1 seeds=$2; shift 2
  .venv/bin/python -m benchmarks.dar_ablation $COMMON $GRID --bases $base --seeds $seeds \
    ${1:+--final-seeds "$@"} --name dar_ablation_glyphs_bases_$base >> $LOG 2>&1
}
bases multisimilarity 3
bases multisimilarity 5 3
# the non-memorizing regime's seed 2, after its screen (its seed-0 finals are logged then)
NOMEM_LOG=benchmarks/results/dar_ablation_log_glyphs_nomem.txt
until grep -q "final proxyanchor/control/compact_inter .*seed=0" $NOMEM_LOG 2>/dev/null; do sleep 20; done
NOMEM_FINAL_SEEDS=2 bash benchmarks/results/dar_ablation_glyphs_nomem_queue.sh
bases multisimilarity 5 4
bases arcface 3
bases contrastive 3
