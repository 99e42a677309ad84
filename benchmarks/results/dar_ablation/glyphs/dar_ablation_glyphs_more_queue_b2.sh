#!/bin/bash
# Issue #18 (2026-12-08), parts 2 and 3b, one 1-thread queue, in priority order; run from the
# repository root, alone or as the follow-up of dar_ablation_glyphs_more_queue.sh (ROLE=b):
#   nohup bash benchmarks/results/dar_ablation/glyphs/dar_ablation_glyphs_more_queue_b2.sh &
# a. N-pair tuned as hard as lambda: its logit scale (loss.scale; 1 = plain cosine logits, what
#    every earlier N-pair run used) over 2 4 8 16 32 with the edges extended twice, 8 runs at
#    most, as many as the lambda search below (3 + 3 + 2); seed 0, validation MAP@R, at the lr
#    N-pair chose on this preset (3e-3, RESULTS.md "dar_ablation on glyphs"). Not the N-pair
#    paper's embedding-norm penalty (loss.embedding_reg_weight, `--base-grid ereg=...`): dasl's
#    embeddings are unit-norm, so that penalty is the constant w with no gradient
#    (tests/test_npair_options.py) and its trials would differ by rounding only; the scale is
#    what the norm sets in the paper's unnormalized N-pair (docs/METHOD-NOTES.md, "N-pair's
#    embedding regularization and logit scale"). Then DAR (signed l2sq exact) and compact_inter
#    on the chosen base, lambda over 0.01 0.1 1, then 0.03 0.3 3, edges twice; finals 3 seeds.
#    --plan: "3 cells, 8 base-tuning runs + 17 screening runs + 6 final runs" (at most; the
#    chosen base's seed-0 baseline is one of the tuning runs): <= 30 runs of ~1.5 min (small
#    CNN: 87 s alone at 1 thread, step 78 ms), about 45-60 min beside one other queue.
# b. The pretrained backbone (--backbone efficientnet_lite0: the packaged ImageNet
#    EfficientNet-Lite0, BatchNorm trained, 1-channel 32 px glyphs, 100 steps) with ProxyAnchor
#    (PML's defaults): lr over 1e-3 3e-3 1e-2 (at 1e-3 it still underfits after 100 steps),
#    DAR (signed l2sq exact) and compact_inter at the chosen lr, lambda over 0.1 1 10, then
#    0.3 3, edges twice; finals 3 seeds. --plan: "3 cells, 17 screening runs + 6 final runs"
#    (at most): <= 23 runs of about 2x a small-CNN run (timed 2026-12-07 beside it: 1,327 s vs
#    700 s wall, about 245 vs 115 s of CPU; docs/METHOD-NOTES.md "A pretrained backbone on
#    glyphs"), about 1.5-2 h beside one other queue.
export PYTHONPATH=$PWD/src
CACHE=${DASL_ABLATION_CACHE:-benchmarks/results/dar_ablation/cache}
DIR=benchmarks/results/dar_ablation/glyphs
LOG=$DIR/dar_ablation_log_glyphs_more_b2.txt
run() { .venv/bin/python -m benchmarks.dar_ablation --datasets glyphs --threads 1 --cache "$CACHE" --no-plots "$@" >> "$LOG" 2>&1; }
L2SQ="--differences signed --measures l2sq --estimators exact --finalists 1 --controls compact_inter --seeds 3 --dar-at-baseline-lr"
run --bases npair --base-grid scale=2,4,8,16,32 --baseline-lrs 0.003 $L2SQ \
  --lambdas 0.01 0.1 1 --tune-lambdas 0.03 0.3 3 --extend-edges 2 --name dar_ablation_glyphs_tunednp
run --backbone efficientnet_lite0 --bases proxyanchor --baseline-lrs 0.001 0.003 0.01 $L2SQ \
  --lambdas 0.1 1 10 --tune-lambdas 0.3 3 --extend-edges 2 --name dar_ablation_glyphs_effnet
