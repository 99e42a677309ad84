glyphs: 2 cells, 5 screening runs + 12 final runs; cache benchmarks/results/dar_ablation_glyphs_nomem_lr_cache/glyphs
22:12:34 glyphs screen proxyanchor/baseline lr=0.001 seed=0: val MAP@R=0.6550 (epoch 13), test R@1=0.7331 MAP@R=0.3590, step 186 ms, 140 s
22:12:34 glyphs screen proxyanchor/baseline lr=0.01 seed=0: val MAP@R=0.2561 (epoch 14), test R@1=0.2878 MAP@R=0.0746, step 268 ms, 251 s
22:14:58 glyphs screen proxyanchor/control/within_scatter lambda=1 seed=0: val MAP@R=0.6724 (epoch 13), test R@1=0.7371 MAP@R=0.3804, step 177 ms, 139 s
22:17:19 glyphs screen proxyanchor/control/within_scatter lambda=3 seed=0: val MAP@R=0.6709 (epoch 15), test R@1=0.7463 MAP@R=0.3875, step 186 ms, 140 s
22:19:23 glyphs screen proxyanchor/control/within_scatter lambda=10 seed=0: val MAP@R=0.6445 (epoch 15), test R@1=0.7474 MAP@R=0.3734, step 151 ms, 121 s
22:19:23 glyphs final proxyanchor/baseline lr=0.001 seed=0: val MAP@R=0.6550 (epoch 13), test R@1=0.7331 MAP@R=0.3590, step 186 ms, 140 s
22:19:23 glyphs final proxyanchor/control/within_scatter lambda=1 seed=0: val MAP@R=0.6724 (epoch 13), test R@1=0.7371 MAP@R=0.3804, step 177 ms, 139 s
22:19:23 glyphs final proxyanchor/baseline lr=0.001 seed=1: val MAP@R=0.5600 (epoch 15), test R@1=0.6554 MAP@R=0.2787, step 120 ms, 89 s
22:21:09 glyphs final proxyanchor/control/within_scatter lambda=1 seed=1: val MAP@R=0.6159 (epoch 15), test R@1=0.7081 MAP@R=0.3329, step 129 ms, 103 s
22:21:09 glyphs final proxyanchor/baseline lr=0.001 seed=2: val MAP@R=0.6456 (epoch 14), test R@1=0.7185 MAP@R=0.3495, step 110 ms, 86 s
22:22:16 glyphs final proxyanchor/control/within_scatter lambda=1 seed=2: val MAP@R=0.6752 (epoch 14), test R@1=0.7459 MAP@R=0.3817, step 76 ms, 64 s
22:22:16 glyphs final proxyanchor/baseline lr=0.001 seed=3: val MAP@R=0.5808 (epoch 15), test R@1=0.6798 MAP@R=0.3046, step 153 ms, 120 s
22:23:15 glyphs final proxyanchor/control/within_scatter lambda=1 seed=3: val MAP@R=0.6470 (epoch 15), test R@1=0.7346 MAP@R=0.3734, step 73 ms, 57 s
22:23:15 glyphs final proxyanchor/baseline lr=0.001 seed=4: val MAP@R=0.6005 (epoch 15), test R@1=0.6880 MAP@R=0.3290, step 161 ms, 129 s
22:24:23 glyphs final proxyanchor/control/within_scatter lambda=1 seed=4: val MAP@R=0.6467 (epoch 15), test R@1=0.7216 MAP@R=0.3578, step 83 ms, 66 s
### glyphs

Screening (seed 0; 5 of 5 runs; val = validation-class MAP@R %, test numbers for reporting only; Δ vs the tuned base loss, same seed):

| cell | val λ=1 | val λ=3 | val λ=10 | chosen | test R@1 | test MAP@R | Δ R@1 | Δ MAP@R | CV | gap | ms/step |
|---|---|---|---|---|---|---|---|---|---|---|---|
| proxyanchor/baseline | lr 0.001: 65.50, 0.01: 25.61 |  |  | lr 0.001 | 73.31 | 35.90 | - | - | 0.224 | 30.84 | 186 |
| proxyanchor/control/within_scatter | 67.24 | 67.09 | 64.45 | λ 1 | 73.71 | 38.04 | +0.40 | +2.13 | 0.233 | 32.01 | 177 |

Finals (test classes, %: mean (±95% t-CI half-width) over seeds; Δ: paired difference to the base loss, same seed):

| cell | setting | seeds | R@1 | MAP@R | NMI | Δ R@1 | Δ MAP@R | Δ NMI | inter-class mean | std | CV | train−test MAP@R gap | ms/step |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
| proxyanchor/baseline | lr 0.001 | 5 | 69.50 (±3.85) | 32.42 (±4.09) | 82.95 (±1.57) | - | - | - | 0.777 (±0.040) | 0.182 (±0.005) | 0.234 (±0.016) | 30.33 (±1.37) | 153 |
| proxyanchor/control/within_scatter | λ 1 | 5 | 72.95 (±1.84) | 36.52 (±2.54) | 84.45 (±0.97) | +3.45 (±2.57) | +4.11 (±2.45) | +1.50 (±0.80) | 0.704 (±0.031) | 0.168 (±0.002) | 0.240 (±0.011) | 31.80 (±0.96) | 83 |

Paired differences (test classes, points; same seed), 95% t-interval in (), Bonferroni-corrected for 3 comparisons in []:

| treated − control | seeds | Δ R@1 | Δ MAP@R | Δ NMI | Δ inter-class mean | Δ CV |
|---|---|---|---|---|---|---|
| proxyanchor/control/within_scatter (λ 1) − proxyanchor/baseline (lr 0.001) | 5 | +3.45 (±2.57) [±3.67] | +4.11 (±2.45) [±3.50] | +1.50 (±0.80) [±1.14] | -0.073 (±0.019) | +0.005 (±0.006) |

Raw pixels on the same test images (no learning): R@1 65.79, MAP@R 30.14, NMI 82.23, inter-class distance CV 0.139.

Baselines per epoch (overfitting check):

| baseline | epoch | train-class MAP@R | val-class MAP@R | seeds |
|---|---|---|---|---|
| proxyanchor/baseline | 0 | 15.95 | 15.46 | 5 |
| proxyanchor/baseline | 1 | 10.59 | 10.01 | 5 |
| proxyanchor/baseline | 2 | 12.29 | 11.97 | 5 |
| proxyanchor/baseline | 3 | 16.31 | 15.67 | 5 |
| proxyanchor/baseline | 4 | 25.96 | 25.71 | 5 |
| proxyanchor/baseline | 5 | 33.91 | 34.01 | 5 |
| proxyanchor/baseline | 6 | 41.86 | 40.95 | 5 |
| proxyanchor/baseline | 7 | 47.44 | 46.10 | 5 |
| proxyanchor/baseline | 8 | 52.90 | 50.82 | 5 |
| proxyanchor/baseline | 9 | 56.61 | 54.79 | 5 |
| proxyanchor/baseline | 10 | 58.58 | 56.98 | 5 |
| proxyanchor/baseline | 11 | 61.15 | 58.94 | 5 |
| proxyanchor/baseline | 12 | 61.86 | 59.88 | 5 |
| proxyanchor/baseline | 13 | 62.44 | 60.62 | 5 |
| proxyanchor/baseline | 14 | 62.73 | 60.79 | 5 |
| proxyanchor/baseline | 15 | 62.78 | 60.80 | 5 |

{"environment": {"python": "3.11.7", "torch": "2.14.1+cu130", "machine": "x86_64", "processor": "x86_64", "torch_threads": 1, "cuda": false}}
