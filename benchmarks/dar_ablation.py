"""DAR ablation (issue #7, section 3): does difference alignment help, and in which reading?

Grid: base loss {N-pair, ProxyAnchor, ...} x difference {signed, abs, ordered} x measure
{l2, l1, l2sq} x estimator {exact, chain}, plus the bare base losses and, optionally, the
compaction controls (#18). The protocol (screening on validation classes, finalists, two-stage
λ tuning, finals over seeds on the unseen test classes) is described in
:mod:`benchmarks.ablation`; this script is its command line (:mod:`benchmarks.ablation.cli`).

Each run writes to ``benchmarks/results/dar_ablation/<run>/`` (the report, ``manifest.json``
and ``NAME_summary.json``, the trial records the report is made from); finished trials are
cached, one JSON each with its full config, in the git-ignored
``benchmarks/results/dar_ablation/cache/<dataset>/``, so a killed benchmark continues where it
stopped. ``--report-only`` rebuilds the report from the cache, or from the committed summary
without it.

    python -m benchmarks.dar_ablation --datasets glyphs fashion-mnist
    python -m benchmarks.dar_ablation --plan            # count the runs, nothing trains
    python -m benchmarks.dar_ablation --report-only
"""

from __future__ import annotations

from benchmarks.ablation.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main())
