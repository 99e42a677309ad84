#!/bin/bash
# Issue #18 (2026-12-07, from 23:25 UTC): the cells still missing, in two 1-thread queues that
# share the trial cache. ROLE=a: ArcFace, Contrastive and SupCon as base losses (the same plan as
# dar_ablation_glyphs_bases_queue.sh gave MultiSimilarity: lr over 1e-3 / 1e-2, DAR signed l2sq
# exact and the compact_inter control lambda-screened over 0.1 1 3 10 with edges extended twice,
# finals on 3 seeds). ROLE=b: the poster's literal l2 CTV (signed and abs, exact) on ProxyAnchor,
# lambda-screened over 0.1 1 10 with edges extended twice so that the optimum is inside the
# grid, finals on 3 seeds; then the follow-up file, if present, read when that step starts.
# From the repository root:
#   ROLE=a nohup bash benchmarks/results/dar_ablation/glyphs/dar_ablation_glyphs_more_queue.sh &
#   ROLE=b nohup bash benchmarks/results/dar_ablation/glyphs/dar_ablation_glyphs_more_queue.sh &
export PYTHONPATH=$PWD/src
CACHE=${DASL_ABLATION_CACHE:-benchmarks/results/dar_ablation/cache}
DIR=benchmarks/results/dar_ablation/glyphs
LOG=$DIR/dar_ablation_log_glyphs_more_$ROLE.txt
run() { .venv/bin/python -m benchmarks.dar_ablation --datasets glyphs --threads 1 --cache "$CACHE" --no-plots "$@" >> "$LOG" 2>&1; }
BASES="--baseline-lrs 0.001 0.01 --dar-at-baseline-lr --seeds 3"
L2SQ="--differences signed --measures l2sq --estimators exact --finalists 1 --lambdas 0.1 1 3 10 --extend-edges 2 --controls compact_inter"
case $ROLE in
a)
  for base in arcface contrastive supcon; do
    run $BASES $L2SQ --bases $base --name dar_ablation_glyphs_bases_$base
  done ;;
b)
  # abs l2 exact costs 1.6 s a step on this machine (5x signed): on 2026-12-07 it was screened
  # at lambda 0.1 and 1 (seed 0) by the first form of this step (--differences signed abs
  # --finalists 2), then stopped so that the tuned N-pair of the follow-up file could run.
  run --bases proxyanchor --baseline-lrs 0.01 --dar-at-baseline-lr --seeds 3 \
    --differences signed --measures l2 --estimators exact --finalists 1 \
    --lambdas 0.1 1 10 --extend-edges 2 --name dar_ablation_glyphs_literal_l2
  [ -f $DIR/dar_ablation_glyphs_more_queue_b2.sh ] && bash $DIR/dar_ablation_glyphs_more_queue_b2.sh ;;
*) echo "ROLE=a or ROLE=b" >&2; exit 2 ;;
esac
