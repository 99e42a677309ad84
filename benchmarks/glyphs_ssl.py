"""Self-supervised SimCLR vs DASL-cf vs DASL-cu (and a compaction control) on glyph images
without labels (issue #18, item 3(d)).

Pretraining: the images of the 96 training characters of the glyphs ablation split
(``data.val_fraction`` 0.9: the other 873 training characters are the validation ones), every
face of each (5,780 images), labels never seen by the loss; the library's own pipeline
(:func:`dasl.training.ssl_run.pretrain_variant`, the ``dasl pretrain`` demo's model, NT-Xent
and optimizer). Views: the ``digits`` recipe at 32 px (random resized crop 0.5-1 of the area,
aspect 3/4-4/3, no flip since a mirrored glyph is another character, brightness/contrast
jitter on the gray image).

Evaluation of the frozen backbone features (cosine), at the last epoch: leave-one-out
retrieval within the validation characters (λ selection) and within the test characters
(the report): 1-NN top-1 (= R@1), MAP@R, NMI. A k-NN classifier with a bank of training
images cannot be used here: the three character sets are disjoint.

Plan: seed 0 screens every family over ``--lambdas`` (``simclr`` has none); each family's
λ is the one with the highest validation MAP@R (ties: the smaller λ). Seeds 1, 2, ... then
train ``simclr`` and each family at its chosen λ, as long as a whole seed is expected to end
before ``--deadline``. Paired differences per seed with 95% t-intervals and Bonferroni
intervals over every reported comparison (:func:`benchmarks.ablation.statistics.contrasts`).
Every trial is kept in ``<out>/trials/`` and reused by a rerun with the same config.

    python -m benchmarks.glyphs_ssl --seeds 5 --deadline 00:50       # the RESULTS.md run
    python -m benchmarks.glyphs_ssl --quick --out /tmp/q              # toy size, digits
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.ablation.statistics import contrasts
from benchmarks.common import RESULTS_DIR, ci95, format_table, manifest, write_manifest
from dasl.config import apply_overrides, parse_override
from dasl.errors import ConfigError, DaslError
from dasl.ssl_config import PretrainConfig, load_pretrain_config, validate_pretrain
from dasl.utils.io import atomic_write_json, atomic_write_text

BENCHMARK = "glyphs_ssl"
FAMILIES: dict[str, dict[str, Any]] = {
    "simclr": {"ssl.method": "simclr", "dar.lam": 0.0},
    "dasl_cf": {"ssl.method": "dasl_cf"},
    "dasl_cu": {"ssl.method": "dasl_cu"},
    # DAR's compaction without its orientation term, instance ids as labels (#18's control).
    "compact_inter": {
        "ssl.method": "dasl_cf",
        "dar.kind": "compact_inter",
        "dar.estimator": "exact",
    },
}
"""Each family's overrides on the base config; all but ``simclr`` get ``dar.lam`` = λ."""
PAIRS: tuple[tuple[str, str], ...] = (
    ("dasl_cf", "simclr"),
    ("dasl_cu", "simclr"),
    ("compact_inter", "simclr"),
    ("dasl_cf", "compact_inter"),
)
"""``(treated, control)`` families of the paired differences."""
BUDGET: dict[str, Any] = {
    "data.name": "glyphs",
    "data.val_fraction": 0.9,
    "data.max_per_class": None,
    "data.eval_max_per_class": 10,
    "data.recipe": "digits",
    "data.image_size": 32,
    "data.in_channels": 1,
    "data.batch_size": 256,
    "data.num_workers": 0,
    "trainer.epochs": 2,
    "optim.warmup_epochs": 0.5,
    "clustering.num_clusters": [96, 288],
    "eval.monitor_every": 0,
    "eval.linear": "none",
    "eval.plots": False,
    "eval.raw_baseline": False,
}
"""Per trial: 5,780 training images, 2 epochs of 22 batches of 256; validation 873 and test 969
characters, 10 faces each (as the supervised glyph cells). DASL-cu: k-means with 1x and 3x
the number of training characters, as the demo's 10 and 30 for 10 classes."""
QUICK: dict[str, Any] = {
    "data.name": "digits",
    "data.val_fraction": 0.3,
    "data.max_per_class": 12,
    "data.eval_max_per_class": 8,
    "data.recipe": "digits",
    "data.image_size": None,
    "data.batch_size": 32,
    "trainer.epochs": 2,
    "optim.warmup_epochs": 0.0,
    "clustering.num_clusters": [4],
    "model.proj_hidden_dim": 32,
    "model.proj_dim": 16,
}
"""Toy size on scikit-learn's digits (its classes on every side, so only the plumbing)."""


def family_config(base: PretrainConfig, family: str, lam: float, seed: int) -> PretrainConfig:
    overrides = dict(FAMILIES[family])
    if family != "simclr":
        overrides["dar.lam"] = lam
    cfg = apply_overrides(base, overrides)
    # apply_overrides checks keys and types only, not the pretraining rules (bounds, λ > 0).
    cfg = validate_pretrain(dataclasses.replace(cfg, seed=seed, name=trial_id(family, lam, seed)))
    return cfg


def trial_id(family: str, lam: float, seed: int) -> str:
    return f"{family}__s{seed}" if family == "simclr" else f"{family}__l{lam:g}__s{seed}"


def retrieval(features: np.ndarray, labels: np.ndarray, nmi: bool, seed: int) -> dict[str, float]:
    """Leave-one-out retrieval within one split (cosine): R@1 (= 1-NN top-1), MAP@R, NMI."""
    from dasl.evaluation import evaluate_embeddings

    m = evaluate_embeddings(features, labels, (1,), nmi=nmi, seed=seed)
    return {k: float(v) for k, v in m.items() if k in ("recall@1", "map@r", "nmi")}


def train_trial(cfg: PretrainConfig, data: Any) -> dict[str, Any]:
    """Pretrain ``cfg`` (the library's pipeline, no test pass of its own) and evaluate the last
    checkpoint's backbone on the validation and test characters."""
    from dasl.metrics.interclass import interclass_distance_stats
    from dasl.training.ssl_callbacks import embed_views
    from dasl.training.ssl_module import load_ssl_module
    from dasl.training.ssl_run import pretrain_variant

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        res = pretrain_variant(cfg, Path(tmp) / cfg.name, data=data, log=lambda s: None, test=False)
        assert res.checkpoint is not None
        module = load_ssl_module(res.checkpoint)
    fit_s = time.perf_counter() - t0
    val = embed_views(module, data.eval_loader(data.evaluated(data.val)))
    test = embed_views(module, data.eval_loader(data.evaluated(data.test)))
    stats = interclass_distance_stats(test[0], test[2], seed=cfg.seed)
    steps = [r["train/images_per_s"] for r in res.history if "train/images_per_s" in r]
    return {
        "config": cfg.to_dict(),
        "val": retrieval(val[0], val[2], nmi=False, seed=cfg.seed),
        "test": retrieval(test[0], test[2], nmi=True, seed=cfg.seed),
        "interclass": {k: float(stats[k]) for k in ("mean", "std", "cv")},
        "dar_last": next((r["train/dar"] for r in reversed(res.history) if "train/dar" in r), None),
        "images_per_s": statistics.fmean(steps) if steps else None,
        "fit_s": fit_s,
        "wall_s": time.perf_counter() - t0,
    }


class Trials:
    """Trial records on disk (``<folder>/<id>.json``), reused when their config matches."""

    def __init__(self, folder: Path, log: Any = print) -> None:
        self.folder = folder
        self.log = log
        self._data: dict[int, Any] = {}

    def run(self, cfg: PretrainConfig) -> dict[str, Any]:
        path = self.folder / f"{cfg.name}.json"
        if path.is_file():
            rec = json.loads(path.read_text())
            if rec.get("config") == json.loads(json.dumps(cfg.to_dict())):
                return rec
        from dasl.run_data import SSLData

        if cfg.seed not in self._data:  # the split does not depend on the family
            self._data = {cfg.seed: SSLData(cfg)}
        # As a rerun reads it back (lists, not tuples), so both give equal records.
        rec = json.loads(json.dumps(train_trial(cfg, self._data[cfg.seed])))
        atomic_write_json(path, rec)
        self.log(
            f"{cfg.name}: val MAP@R {100 * rec['val']['map@r']:.2f}, test R@1 "
            f"{100 * rec['test']['recall@1']:.2f} MAP@R {100 * rec['test']['map@r']:.2f} "
            f"({rec['wall_s']:.0f} s)"
        )
        return rec


def choose(screen: dict[str, dict[float, dict[str, Any]]]) -> dict[str, float]:
    """Each family's λ: the highest validation MAP@R, then R@1; ties to the smaller λ."""
    return {
        family: min(
            by_lam,
            key=lambda lam: (-by_lam[lam]["val"]["map@r"], -by_lam[lam]["val"]["recall@1"], lam),
        )
        for family, by_lam in screen.items()
    }


def parse_deadline(text: str | None, now: dt.datetime) -> dt.datetime | None:
    """``HH:MM`` (UTC): its next occurrence after ``now``; None: no deadline."""
    if text is None:
        return None
    try:
        hour, minute = (int(x) for x in text.split(":"))
        when = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    except ValueError:
        raise ConfigError(f"--deadline: expected HH:MM (UTC), got {text!r}") from None
    return when if when > now else when + dt.timedelta(days=1)


def summarize(
    finals: dict[str, dict[int, dict[str, Any]]], chosen: dict[str, float]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per family: mean ± 95% CI half-width over seeds (points); paired differences of
    :data:`PAIRS` with their 95% and Bonferroni intervals (``contrasts``)."""
    rows = []
    for family, by_seed in finals.items():
        row: dict[str, Any] = {"family": family, "λ": chosen.get(family, 0.0)}
        row["seeds"] = len(by_seed)
        for split, metric, col in (
            ("val", "map@r", "val MAP@R"),
            ("test", "recall@1", "test R@1"),
            ("test", "map@r", "test MAP@R"),
            ("test", "nmi", "test NMI"),
        ):
            mean, _, half = ci95([100 * r[split][metric] for r in by_seed.values()])
            row[col] = f"{mean:.2f}" + (f" ± {half:.2f}" if len(by_seed) > 1 else "")
        row["inter-class mean"] = round(
            statistics.fmean(r["interclass"]["mean"] for r in by_seed.values()), 3
        )
        rows.append(row)
    pairs = [(t, c) for t, c in PAIRS if t in finals and c in finals]
    diffs = []
    for rec in contrasts({"finals": finals}, pairs):
        for metric, name in (("recall@1", "R@1"), ("map@r", "MAP@R"), ("nmi", "NMI")):
            s = rec[metric]
            a, b = finals[rec["treated"]], finals[rec["control"]]
            per = [
                100 * (a[x]["test"][metric] - b[x]["test"][metric]) for x in sorted(set(a) & set(b))
            ]
            diffs.append(
                {
                    "comparison": f"{rec['treated']} - {rec['control']}",
                    "metric": name,
                    "per seed": ", ".join(f"{d:+.2f}" for d in per),
                    "mean": round(s["mean"], 2),
                    "95% CI": _interval(s["mean"], s["ci95"]),
                    f"Bonferroni (m={rec['comparisons']})": _interval(s["mean"], s["bonferroni"]),
                    "n": s["n"],
                }
            )
    return rows, diffs


def _interval(mean: float, half: float) -> str:
    if not np.isfinite(half):
        return "n/a"
    return f"{mean:+.2f} ± {half:.2f} [{mean - half:+.2f}, {mean + half:+.2f}]"


def screen_table(screen: dict[str, dict[float, dict[str, Any]]]) -> list[dict[str, Any]]:
    return [
        {
            "family": family,
            "λ": lam,
            "val R@1": round(100 * rec["val"]["recall@1"], 2),
            "val MAP@R": round(100 * rec["val"]["map@r"], 2),
            "seconds": round(rec["wall_s"]),
        }
        for family, by_lam in screen.items()
        for lam, rec in by_lam.items()
    ]


def report(
    out: Path,
    base: PretrainConfig,
    screen: dict[str, dict[float, dict[str, Any]]],
    finals: dict[str, dict[int, dict[str, Any]]],
    chosen: dict[str, float],
    raw: dict[str, Any] | None,
    info: dict[str, Any],
) -> None:
    """``glyphs_ssl.md`` and ``glyphs_ssl.json`` (and ``manifest.json``) in ``out``."""
    rows, diffs = summarize(finals, chosen)
    dcols = ["comparison", "metric", "per seed", "mean", "95% CI"]
    dcols += [k for k in (diffs[0] if diffs else {}) if k.startswith("Bonferroni")] + ["n"]
    lines = [
        "# Self-supervised pretraining on glyph images (issue #18, 3(d))",
        "",
        f"`{info['command']}` (commit {info['commit']}, {info['date']})",
        "",
        "Leave-one-out retrieval on the frozen backbone features (cosine), last epoch; "
        "percent. λ chosen per family on the validation characters (seed 0).",
        "",
        "## Test characters (mean ± 95% CI half-width over seeds)",
        "",
        format_table(rows, list(rows[0]) if rows else []),
        "",
    ]
    if raw is not None:
        lines += [
            "Raw pixels: test R@1 {:.2f}, MAP@R {:.2f}, NMI {:.2f}; val MAP@R {:.2f}.".format(
                100 * raw["test"]["recall@1"],
                100 * raw["test"]["map@r"],
                100 * raw["test"]["nmi"],
                100 * raw["val"]["map@r"],
            ),
            "",
        ]
    lines += ["## Paired differences (test, points)", "", format_table(diffs, dcols), ""]
    lines += ["## λ screen (seed 0, validation characters)", ""]
    scols = ["family", "λ", "val R@1", "val MAP@R", "seconds"]
    lines += [format_table(screen_table(screen), scols)]
    atomic_write_text(out / f"{BENCHMARK}.md", "\n".join(lines) + "\n")
    payload = {
        "benchmark": BENCHMARK,
        "manifest": info,
        "config": base.to_dict(),
        "chosen": chosen,
        "screen": {f: {str(k): v for k, v in d.items()} for f, d in screen.items()},
        "finals": {f: {str(k): v for k, v in d.items()} for f, d in finals.items()},
        "raw_pixels": raw,
        "summary": rows,
        "paired_differences": diffs,
    }
    atomic_write_json(out / f"{BENCHMARK}.json", payload)
    write_manifest(out, info)


def raw_pixels(base: PretrainConfig) -> dict[str, Any] | None:
    """Retrieval on the flattened eval-view pixels of the validation and test characters."""
    from dasl.evaluation import raw_pixels as flat
    from dasl.run_data import SSLData

    data = SSLData(base)
    val, test = flat(data.val), flat(data.test)
    if val is None or test is None:
        return None
    return {
        "val": retrieval(val[0], val[1], nmi=False, seed=base.seed),
        "test": retrieval(test[0], test[1], nmi=True, seed=base.seed),
    }


def run(
    base: PretrainConfig,
    lambdas: Sequence[float],
    seeds: int,
    out: Path,
    deadline: dt.datetime | None,
    info: dict[str, Any],
    log: Any = print,
    families: Sequence[str] = tuple(FAMILIES),
) -> dict[str, dict[int, dict[str, Any]]]:
    """The screen on seed 0, then the finals seed by seed (report rewritten after each), for
    ``families`` (in :data:`FAMILIES` order)."""
    families = [f for f in FAMILIES if f in families]
    out.mkdir(parents=True, exist_ok=True)
    trials = Trials(out / "trials", log)
    (out / "trials").mkdir(exist_ok=True)
    raw = raw_pixels(base)
    screen: dict[str, dict[float, dict[str, Any]]] = {}
    for family in families:
        for lam in (0.0,) if family == "simclr" else lambdas:
            screen.setdefault(family, {})[lam] = trials.run(family_config(base, family, lam, 0))
    chosen = choose(screen)
    finals = {f: {0: screen[f][chosen[f]]} for f in families}
    report(out, base, screen, finals, chosen, raw, info)
    for seed in range(1, seeds):
        walls = [r["wall_s"] for by in finals.values() for r in by.values()]
        expected = dt.timedelta(seconds=len(families) * statistics.fmean(walls))
        now = dt.datetime.now(dt.timezone.utc)
        if deadline is not None and now + expected > deadline:
            log(f"seed {seed} would end after {deadline:%H:%M} UTC (about {expected}): stopping")
            break
        for family in families:
            finals[family][seed] = trials.run(family_config(base, family, chosen[family], seed))
        report(out, base, screen, finals, chosen, raw, info)
    return finals


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds at most (seed 0 screens)")
    parser.add_argument("--lambdas", type=float, nargs="+", default=[0.3, 1.0])
    parser.add_argument("--deadline", help="HH:MM UTC: start no seed expected to end after it")
    parser.add_argument(
        "--families",
        nargs="+",
        choices=list(FAMILIES),
        default=list(FAMILIES),
        help="the families to run (simclr, the reference of every comparison, always runs)",
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="toy size on digits (1 λ, 2 seeds)")
    parser.add_argument("--name", default="default", help="run folder under results/glyphs_ssl/")
    parser.add_argument("--out", type=Path, help="run folder (default: from --name)")
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. trainer.epochs=3")
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.threads < 1:
        parser.error("--seeds and --threads must be at least 1")
    if any(not lam > 0 for lam in args.lambdas):
        parser.error(f"--lambdas: every λ must be > 0, got {args.lambdas}")
    import torch

    torch.set_num_threads(args.threads)
    argv_used = sys.argv[1:] if argv is None else argv
    info = manifest(argv_used, "benchmarks.glyphs_ssl")
    try:
        deadline = parse_deadline(args.deadline, dt.datetime.now(dt.timezone.utc))
        base = load_pretrain_config(None, None)
        base = dataclasses.replace(base, compare=None)
        base = apply_overrides(base, {**BUDGET, **(QUICK if args.quick else {})})
        if args.overrides:
            base = apply_overrides(base, dict(parse_override(o) for o in args.overrides))
        for family in FAMILIES:  # refuse a bad setting before anything trains
            family_config(base, family, args.lambdas[0], 0)
        out = args.out or RESULTS_DIR / BENCHMARK / args.name
        lambdas = args.lambdas[:1] if args.quick else args.lambdas
        t0 = time.perf_counter()
        families = ["simclr", *args.families]
        run(base, lambdas, args.seeds, out, deadline, info, families=families)
    except DaslError as exc:
        print(f"glyphs_ssl: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    print((out / f"{BENCHMARK}.md").read_text())
    print(f"wrote {out} ({(time.perf_counter() - t0) / 60:.1f} min)")


if __name__ == "__main__":
    main()
