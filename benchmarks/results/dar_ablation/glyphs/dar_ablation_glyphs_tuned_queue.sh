#!/bin/bash
# Issue #18 (2026-12-08, from 02:40 UTC): two 1-thread queues sharing the trial cache.
# ROLE=e: the pretrained backbone (part 3b), the second step of dar_ablation_glyphs_more_queue_b2.sh
#   (its first step, the tuned N-pair, is done and cached): EfficientNet-Lite0 fine-tuned on
#   glyphs with ProxyAnchor, lr over 1e-3 3e-3 1e-2, DAR (signed l2sq exact) and compact_inter,
#   lambda over 0.1 1 10 then 0.3 3, edges twice, finals 3 seeds (<= 23 runs of ~200-250 s);
#   then seeds 3-4 added by the same command with --seeds 5 (docs/METHOD-NOTES.md, "ArcFace and
#   SupCon tuned as hard as lambda ...": DAR was ahead of its control at 95% on 3 seeds).
# ROLE=t: ArcFace and SupCon tuned as hard as lambda (part 2), at the lr each chose (1e-2,
#   RESULTS.md "Three more base losses"): ArcFace's margin (degrees, PML's 28.6) over 15 45 and
#   scale (PML's 64) over 16 32, then SupCon's temperature (PML's 0.1) over 0.03 0.05 0.2 0.5,
#   edges stepped twice (at most 5-9 tuning runs: the lambda search below has 4 + 2), then DAR
#   (signed l2sq exact) and compact_inter on the chosen base, lambda over 0.1 1 3 10, edges
#   twice, finals 3 seeds (<= 30 runs of ~100-200 s per base).
# From the repository root, with an absolute cache path shared by both:
#   ROLE=e nohup bash benchmarks/results/dar_ablation/glyphs/dar_ablation_glyphs_tuned_queue.sh &
#   ROLE=t nohup bash benchmarks/results/dar_ablation/glyphs/dar_ablation_glyphs_tuned_queue.sh &
export PYTHONPATH=$PWD/src
CACHE=${DASL_ABLATION_CACHE:-benchmarks/results/dar_ablation/cache}
DIR=benchmarks/results/dar_ablation/glyphs
LOG=$DIR/dar_ablation_log_glyphs_tuned_$ROLE.txt
run() { .venv/bin/python -m benchmarks.dar_ablation --datasets glyphs --threads 1 --cache "$CACHE" --no-plots "$@" >> "$LOG" 2>&1; }
L2SQ="--differences signed --measures l2sq --estimators exact --finalists 1 --controls compact_inter --seeds 3 --dar-at-baseline-lr"
case $ROLE in
e)
  run --backbone efficientnet_lite0 --bases proxyanchor --baseline-lrs 0.001 0.003 0.01 $L2SQ \
    --lambdas 0.1 1 10 --tune-lambdas 0.3 3 --extend-edges 2 --name dar_ablation_glyphs_effnet ;;
t)
  run --bases arcface --base-grid margin=15,45 scale=16,32 --baseline-lrs 0.01 $L2SQ \
    --lambdas 0.1 1 3 10 --extend-edges 2 --name dar_ablation_glyphs_tunedarc
  run --bases supcon --base-grid temperature=0.03,0.05,0.2,0.5 --baseline-lrs 0.01 $L2SQ \
    --lambdas 0.1 1 3 10 --extend-edges 2 --name dar_ablation_glyphs_tunedsupcon ;;
*) echo "ROLE=e or ROLE=t" >&2; exit 2 ;;
esac
