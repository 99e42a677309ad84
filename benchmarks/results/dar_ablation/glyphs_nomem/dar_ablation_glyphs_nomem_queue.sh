#!/bin/bash
# Issue #18 (2026-12-07): glyphs in a regime that does not memorize: all 872 non-validation
# training characters (data.val_fraction=0.1: 97 validation characters), 16 epochs x 25
# batches of 120 (400 steps, the budget of configs/dml/glyphs_proxyanchor.yaml, where train-
# and validation-class MAP@R rise together at lr 1e-3). ProxyAnchor's lr over the config's
# 1e-3 and the memorized ablation's 1e-2 (1e-2 was tried first, alone, in
# dar_ablation_glyphs_nomem_cache: with 872 classes and proxies at 100x it breaks ProxyAnchor,
# test MAP@R 7.5; its seed-0 baseline is copied into this cache). DAR (signed l2sq exact) and
# the compact_inter control over lambda 1 3 10 (cut to fit: ~140-200 s a run at load 10),
# finals on 5 seeds (run on 2026-12-07 in two passes: seeds 1-2, then 3-4). Two processes,
# disjoint cells: ROLE=dar (baseline + DAR; seeds upward) and ROLE=control (compact_inter;
# seeds downward, so the two rarely train the same baseline run), started together. From the repository root:
#   ROLE=dar nohup bash benchmarks/results/dar_ablation/glyphs_nomem/dar_ablation_glyphs_nomem_queue.sh &
#   ROLE=control nohup bash benchmarks/results/dar_ablation/glyphs_nomem/dar_ablation_glyphs_nomem_queue.sh &
export PYTHONPATH=$PWD/src
COMMON="--datasets glyphs --bases proxyanchor --baseline-lrs 0.001 0.01 --dar-at-baseline-lr --seeds 5 --threads 1 --cache benchmarks/results/dar_ablation/cache --no-plots --lambdas 1 3 10"
REGIME="data.val_fraction=0.1 trainer.epochs=16 data.batches_per_epoch=25"
LOG=benchmarks/results/dar_ablation/glyphs_nomem/dar_ablation_log_glyphs_nomem.txt
if [ "${ROLE:-dar}" = dar ]; then
  .venv/bin/python -m benchmarks.dar_ablation $COMMON --differences signed --measures l2sq \
    --estimators exact --finalists 1 --final-seeds ${FINAL:-1 2 3 4} --name dar_ablation_glyphs_nomem $REGIME >> $LOG 2>&1
elif [ "$ROLE" = control ]; then
  .venv/bin/python -m benchmarks.dar_ablation $COMMON --no-dar --controls compact_inter \
    --final-seeds ${FINAL:-4 3 2 1} --name dar_ablation_glyphs_nomem_controls $REGIME >> $LOG.control 2>&1
else  # ROLE=within_scatter: added when time remained, after the two roles above (seeds 0-2 by 22:25)
  .venv/bin/python -m benchmarks.dar_ablation $COMMON --no-dar --controls within_scatter \
    --name dar_ablation_glyphs_nomem_ws $REGIME >> $LOG.ws 2>&1
fi
