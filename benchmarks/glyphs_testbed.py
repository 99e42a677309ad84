"""Is ``glyphs`` a testbed where learning matters? (issue #7 section 1)

On the unseen test classes of the glyphs dataset, retrieval (query = gallery = test set, self
excluded, cosine) with three embeddings of the same images:

- raw pixels (the flattened 32x32 glyph),
- frozen EfficientNet-Lite0 ImageNet features (1280-d pooled, glyph resized to 224 px,
  3 channels, the packaged weights' ``(pixel - 127) / 128`` input scaling; white ink on black
  as rendered, and inverted to black on white, the photo-like polarity),
- a model trained with dasl's own trainer (``train_variant``) on the training classes,
  config ``configs/dml/glyphs_proxyanchor.yaml`` unless ``--config`` says otherwise.

The trained run also records, each epoch, retrieval on a fixed sample of its own training
images (train-class MAP@R / R@1) beside the validation-class metrics, so its curves show
whether the budget over- or underfits. It prints the full-archive counts of the dataset
(the check too slow for the test suite) and a Markdown table, and writes
``benchmarks/results/glyphs_testbed/default/glyphs_testbed.json``.

    python -m benchmarks.glyphs_testbed                      # the RESULTS.md run
    python -m benchmarks.glyphs_testbed --methods trained --out /tmp/c.json trainer.epochs=30
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Subset
from torchvision.transforms import v2

from benchmarks.common import format_table, write_results
from dasl.config import apply_overrides, load_config, parse_override
from dasl.data import build_transforms, load_dataset
from dasl.data.glyphs import build_cache
from dasl.data.transforms import MatchChannels
from dasl.evaluation import embed, evaluate_embeddings, raw_pixels
from dasl.models import build_model, input_normalization
from dasl.run_data import MetricLearningData
from dasl.training.run import train_variant

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "dml" / "glyphs_proxyanchor.yaml"
KS = (1, 2, 4, 8)
COLUMNS = ("method", "dim", "R@1", "R@2", "R@4", "R@8", "MAP@R", "NMI", "seconds")


class TrainClassProbe(L.Callback):
    """Each epoch: retrieval on a fixed sample of the training images, in eval mode.

    With ``map@r`` on the validation classes this separates fitting (train-class metrics
    rising) from generalising to unseen classes (validation-class metrics)."""

    def __init__(self, dataset: Any, batch_size: int = 512) -> None:
        self.loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
        self.rows: list[dict[str, float]] = []

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        was_training = pl_module.training
        emb, lab = embed(pl_module, self.loader, pl_module.device)
        if was_training:
            pl_module.train()
        m = evaluate_embeddings(emb, lab, (1,), nmi=False)
        self.rows.append(
            {"epoch": trainer.current_epoch, "recall@1": m["recall@1"], "map@r": m["map@r"]}
        )


def probe_set(cfg: Any, classes: int, per_class: int) -> Subset:
    """The first ``per_class`` training images of the first ``classes`` training classes."""
    ds = load_dataset(
        "glyphs",
        cfg.data.root,
        cfg.data.train_split,
        transform=build_transforms(cfg.data.transform, train=False, in_channels=1),
        val_fraction=cfg.data.val_fraction,
        val_by=cfg.data.val_by or "classes",
        max_per_class=min(per_class, cfg.data.max_per_class or per_class),
    )
    return Subset(ds, np.flatnonzero(ds.labels < classes).tolist())


def row(method: str, dim: int, m: dict[str, float], seconds: float) -> dict[str, Any]:
    return {
        "method": method,
        "dim": dim,
        **{f"R@{k}": round(100 * m[f"recall@{k}"], 2) for k in KS},
        "MAP@R": round(100 * m["map@r"], 2),
        "NMI": round(100 * m["nmi"], 2),
        "seconds": round(seconds, 1),
    }


def effnet_features(test: Any, invert: bool, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Frozen EfficientNet-Lite0 pooled features of ``test`` (a dataset or Subset)."""
    model = build_model("efficientnet_lite0", embedding_dim=None, pretrained=True, in_channels=3)
    mean, std = input_normalization("efficientnet_lite0", 3)
    steps: list[Any] = [MatchChannels(3)]
    if invert:
        steps.append(v2.Lambda(lambda x: 1.0 - x))
    steps += [v2.Resize((224, 224), antialias=True), v2.Normalize(mean, std)]
    if isinstance(test, Subset):
        dataset: Any = Subset(test.dataset.with_transform(v2.Compose(steps)), test.indices)
    else:
        dataset = test.with_transform(v2.Compose(steps))
    return embed(model, DataLoader(dataset, batch_size=batch_size))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("--cap", type=int, default=10, help="test images per class (faces)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--methods",
        default="raw,effnet,trained",
        help="comma-separated subset of raw, effnet, effnet-inverted, trained",
    )
    parser.add_argument("--probe-classes", type=int, default=200)
    parser.add_argument(
        "--effnet-classes",
        type=int,
        default=200,
        help="EffNet at 224 px is slow on a CPU: it runs on every k-th test class (about this "
        "many; 0 = all), and all methods are also reported on that subset",
    )
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. trainer.epochs=2")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    manifest, _ = build_cache(None, 32, 8, None)
    counts = {**manifest["counts"], "load_or_render_s": round(time.perf_counter() - t0, 1)}
    counts["render_s_when_built"] = manifest["render_seconds"]
    print(
        f"glyphs: {counts['classes']:,} classes, {counts['images']:,} images from "
        f"{counts['faces']} faces; faces per class min {counts['faces_per_class_min']}, "
        f"median {counts['faces_per_class_median']:g}, max {counts['faces_per_class_max']} "
        f"(rendered in {counts['render_s_when_built']} s when the cache was built)",
        flush=True,
    )

    cfg = load_config(args.config)
    overrides = {
        "eval.plots": False,
        "eval.raw_baseline": False,
        "trainer.progress_bar": False,
        "data.eval_max_per_class": args.cap,
    }
    overrides.update(dict(parse_override(o) for o in args.overrides))
    cfg = apply_overrides(cfg, overrides)
    test = load_dataset("glyphs", cfg.data.root, cfg.data.test_split, max_per_class=args.cap)
    print(f"test: {test.describe()} (first {args.cap} faces of each class)", flush=True)
    rows, results = [], {}
    stride = max(1, -(-test.num_classes // args.effnet_classes)) if args.effnet_classes else 1
    in_subset = test.labels % stride == 0
    subset = Subset(test, np.flatnonzero(in_subset).tolist())
    sub_classes = np.unique(test.labels[in_subset])
    sub_name = f"{int(in_subset.sum()):,} images of {len(sub_classes)} classes"
    sub_rows: list[dict[str, Any]] = []

    def save(**extra: Any) -> Path:
        """Write what is measured so far (a long run killed later keeps its rows)."""
        payload = {
            "dataset": counts,
            "test": test.describe(),
            "cap_per_class": args.cap,
            "subset": sub_name,
            "rows": rows,
            "subset_rows": sub_rows,
            "results": results,
            "threads": args.threads,
            **extra,
        }
        return write_results("glyphs_testbed", payload, args.out)

    methods = set(args.methods.split(","))
    unknown = methods - {"raw", "effnet", "effnet-inverted", "trained"}
    if unknown:
        parser.error(f"unknown method(s) {sorted(unknown)}")
    if "raw" in methods:
        t = time.perf_counter()
        emb, lab = raw_pixels(test)
        m = evaluate_embeddings(emb, lab, KS)
        rows.append(row("raw pixels", emb.shape[1], m, time.perf_counter() - t))
        results["raw_pixels"] = m
        print(format_table(rows[-1:], COLUMNS), flush=True)
        m = evaluate_embeddings(emb[in_subset], lab[in_subset], KS)
        sub_rows.append(row("raw pixels", emb.shape[1], m, 0.0))
        results["subset/raw_pixels"] = m
        save()

    for invert in (False, True):
        if ("effnet-inverted" if invert else "effnet") in methods:
            t = time.perf_counter()
            emb, lab = effnet_features(subset, invert, batch_size=64)
            m = evaluate_embeddings(emb, lab, KS)
            name = "EfficientNet-Lite0 frozen" + (", inverted" if invert else "")
            sub_rows.append(row(name, emb.shape[1], m, time.perf_counter() - t))
            results["subset/" + ("effnet_inverted" if invert else "effnet")] = m
            print(format_table(sub_rows[-1:], COLUMNS), flush=True)
            save()

    if "trained" not in methods:
        print(f"\nwrote {save()}")
        return
    t = time.perf_counter()
    data = MetricLearningData.for_experiment(cfg)
    probe = TrainClassProbe(probe_set(cfg, args.probe_classes, 8))
    with tempfile.TemporaryDirectory() as tmp:
        res = train_variant(
            dataclasses.replace(cfg, name="trained"),
            Path(tmp) / "trained",
            log=lambda s: print(s, flush=True),
            data=data,
            callbacks=[probe],
        )
    steps = cfg.trainer.epochs * (cfg.data.batches_per_epoch or 0)
    label = f"{cfg.model.backbone} + {cfg.loss.name}, {steps} steps"
    rows.append(row(label, cfg.model.embedding_dim, res.metrics, time.perf_counter() - t))
    results["trained"] = res.metrics
    if not np.array_equal(res.labels, test.labels):
        raise RuntimeError("the trained run evaluated another test set than the baselines")
    keep = np.isin(res.labels, sub_classes)
    m = evaluate_embeddings(res.embeddings[keep], res.labels[keep], KS)
    sub_rows.append(row(label, cfg.model.embedding_dim, m, 0.0))
    results["subset/trained"] = m

    curve = []
    val = {int(r["epoch"]): r for r in res.history if "val/map@r" in r}
    for p in probe.rows:
        v = val.get(int(p["epoch"]), {})
        curve.append(
            {
                "epoch": p["epoch"],
                "train R@1": round(100 * p["recall@1"], 2),
                "train MAP@R": round(100 * p["map@r"], 2),
                "val R@1": round(100 * v.get("val/recall@1", float("nan")), 2),
                "val MAP@R": round(100 * v.get("val/map@r", float("nan")), 2),
            }
        )
    print(f"\nall test classes ({test.describe()}):\n" + format_table(rows, COLUMNS))
    print(f"\nevery {stride}th test class ({sub_name}):\n" + format_table(sub_rows, COLUMNS))
    print("\nper epoch (train = fixed sample of training images; val = validation classes):")
    print(format_table(curve, ("epoch", "train R@1", "train MAP@R", "val R@1", "val MAP@R")))
    path = save(
        config=cfg.to_dict(),
        curve=curve,
        timings=res.timings,
        total_s=round(time.perf_counter() - t0, 1),
    )
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
