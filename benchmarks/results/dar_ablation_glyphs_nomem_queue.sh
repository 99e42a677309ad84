#!/bin/bash
# Issue #18 (2026-12-07): glyphs in a regime that does not memorize: all 872 non-validation
# training characters (data.val_fraction=0.1: 97 validation characters), 16 epochs x 25
# batches of 120 (400 steps, the budget of configs/dml/glyphs_proxyanchor.yaml, where train-
# and validation-class MAP@R rise together). ProxyAnchor at the ablation's lr 1e-2 (no lr
# search, no edge steps: cut for time, runs took ~200 s at load 10); DAR (signed l2sq exact)
# and the compact_inter control over lambda 0.3 1 3 10, seed 0, then the finals of the seeds
# in NOMEM_FINAL_SEEDS (default 1; step c of dar_ablation_glyphs_evidence1_queue.sh, while
# dar_ablation_glyphs_bases_queue.sh trains seed 2 beside it). Alone, for 3 seeds:
#   NOMEM_FINAL_SEEDS="1 2" bash benchmarks/results/dar_ablation_glyphs_nomem_queue.sh
# Own cache: the trial cache is keyed by cell, lambda and seed, its config only checked.
export PYTHONPATH=$PWD/src
COMMON="--datasets glyphs --bases proxyanchor --baseline-lrs 0.01 --dar-at-baseline-lr --threads 1 --cache benchmarks/results/dar_ablation_glyphs_nomem_cache --no-plots"
GRID="--differences signed --measures l2sq --estimators exact --finalists 1 --lambdas 0.3 1 3 10 --controls compact_inter"
REGIME="data.val_fraction=0.1 trainer.epochs=16 data.batches_per_epoch=25"
LOG=benchmarks/results/dar_ablation_log_glyphs_nomem.txt
.venv/bin/python -m benchmarks.dar_ablation $COMMON $GRID --seeds 3 --final-seeds ${NOMEM_FINAL_SEEDS:-1} \
  --name dar_ablation_glyphs_nomem $REGIME >> $LOG 2>&1
