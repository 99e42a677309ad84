"""The DAR ablation as a small library (#17): what a trial is, how values are searched, the
statistics, the report, and where results live.

- :mod:`.cells`: a cell (base loss x DAR reading, or a control), its config and cache key;
- :mod:`.presets`: the datasets' configs;
- :mod:`.trials`: training one trial, and the per-trial cache;
- :mod:`.search`: λ screens, finalists, two-stage tuning, edge extension, finals;
- :mod:`.base_tuning`: the base loss's own options, tuned first (#18);
- :mod:`.statistics`: paired differences, 95% t-intervals, Bonferroni;
- :mod:`.report`, :mod:`.plots`: Markdown, JSON, figures;
- :mod:`.store`: the run folder, the shared cache and the committed run summary;
- :mod:`.migrate`: moves results of the flat layout into ``results/<benchmark>/<run>/``;
- :mod:`.cli`: the command line of ``python -m benchmarks.dar_ablation``.

Protocol (MLRC-style, test never used for any choice):

1. Screening, seed 0. Every run trains on the training classes minus the validation classes
   (``data.train_split``, class-disjoint carve-out ``data.val_by=classes``) and keeps the
   checkpoint of the epoch with the best validation-class MAP@R. Each DAR cell is trained
   for every lambda of a log grid; the baselines (lambda 0) for every learning rate of a
   grid of the same size, so both get the same tuning effort, budget and checkpoint
   selection. A cell's score is the best validation MAP@R over its grid.
2. Finalists: per base loss, the best cell of each of the ``--finalists`` best difference
   types (ranked by validation MAP@R), so that the finals compare readings. They are also
   trained at the ``--tune-lambdas`` (a finer grid), and with ``--extend-edges N`` a
   finalist whose best lambda is at an edge of the values tried gets up to N more past it.
3. Finals: finalists and baselines with their chosen setting, seeds 0..S-1 (seed 0 is the
   screening run itself: same config), evaluated once on the unseen test classes.

Reported per run: test R@1 / MAP@R / NMI, inter-class distance mean / std / CV on the
test classes, train-class MAP@R at the chosen checkpoint minus test MAP@R (the gap), and
the time per optimizer step (forward + backward + step, data loading excluded). Per final:
mean and 95% t-interval over seeds, and the paired difference to the base loss (same seed).
"""
