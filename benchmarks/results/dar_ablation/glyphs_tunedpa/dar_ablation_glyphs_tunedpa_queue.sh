#!/bin/bash
# ProxyAnchor's alpha and margin tuned on validation, then (1) the tuned baseline's finals,
# (2) DAR (signed l2sq exact) on the tuned base with lambda re-tuned over DAR's grid, (3) the
# compact_inter control on the tuned base. Each step reuses the cache (the base tuning is
# re-read from it, instantly). From the repository root:
#   nohup bash benchmarks/results/dar_ablation/glyphs_tunedpa/dar_ablation_glyphs_tunedpa_queue.sh &
export PYTHONPATH=$PWD/src
COMMON="--datasets glyphs --bases proxyanchor --base-grid alpha=8,16,64 margin=0,0.2,0.4 --baseline-lrs 0.01 --dar-at-baseline-lr --seeds 5 --threads 1 --cache benchmarks/results/dar_ablation/cache --no-plots"
GRID="--differences signed --measures l2sq --estimators exact --finalists 1 --lambdas 0.01 0.1 1 --tune-lambdas 0.03 0.3 3 --extend-edges 2"
LOG=benchmarks/results/dar_ablation/glyphs_tunedpa/dar_ablation_log_glyphs_tunedpa.txt
nice -n 5 .venv/bin/python -m benchmarks.dar_ablation $COMMON --no-dar --name dar_ablation_glyphs_tunedpa_base >> $LOG 2>&1
nice -n 5 .venv/bin/python -m benchmarks.dar_ablation $COMMON $GRID --name dar_ablation_glyphs_tunedpa >> $LOG 2>&1
nice -n 5 .venv/bin/python -m benchmarks.dar_ablation $COMMON $GRID --controls compact_inter --name dar_ablation_glyphs_tunedpa_controls >> $LOG 2>&1
# 4. the within_scatter control on the tuned base too (added after the untuned base's screen showed it best)
nice -n 5 .venv/bin/python -m benchmarks.dar_ablation $COMMON $GRID --controls compact_inter within_scatter --name dar_ablation_glyphs_tunedpa_controls >> $LOG 2>&1
