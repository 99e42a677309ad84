#!/bin/bash
# Issue #18 (2026-12-07): glyphs in a regime that does not memorize: all 872 non-validation
# training characters (data.val_fraction=0.1: 97 validation characters), 16 epochs x 25
# batches of 120 (400 steps, the budget of configs/dml/glyphs_proxyanchor.yaml, where train-
# and validation-class MAP@R rise together). ProxyAnchor's lr over the config's 1e-3 and the
# ablation's 1e-2; DAR (signed l2sq exact) and the compact_inter control over lambda 0.3 1 3 10
# (edges extended once); finals on 3 seeds, then 5, then within_scatter added on the same cache.
# Own cache: the trial cache is keyed by cell, lambda and seed, its config only checked.
# From the repository root (step c of dar_ablation_glyphs_evidence1_queue.sh):
#   nohup bash benchmarks/results/dar_ablation_glyphs_nomem_queue.sh &
export PYTHONPATH=$PWD/src
COMMON="--datasets glyphs --bases proxyanchor --baseline-lrs 0.001 0.01 --dar-at-baseline-lr --threads 1 --cache benchmarks/results/dar_ablation_glyphs_nomem_cache --no-plots"
GRID="--differences signed --measures l2sq --estimators exact --finalists 1 --lambdas 0.3 1 3 10 --extend-edges 1"
REGIME="data.val_fraction=0.1 trainer.epochs=16 data.batches_per_epoch=25"
LOG=benchmarks/results/dar_ablation_log_glyphs_nomem.txt
.venv/bin/python -m benchmarks.dar_ablation $COMMON $GRID --controls compact_inter --seeds 3 \
  --name dar_ablation_glyphs_nomem $REGIME >> $LOG 2>&1
.venv/bin/python -m benchmarks.dar_ablation $COMMON $GRID --controls compact_inter --seeds 5 \
  --name dar_ablation_glyphs_nomem $REGIME >> $LOG 2>&1
.venv/bin/python -m benchmarks.dar_ablation $COMMON $GRID --controls compact_inter within_scatter \
  --seeds 5 --name dar_ablation_glyphs_nomem $REGIME >> $LOG 2>&1
