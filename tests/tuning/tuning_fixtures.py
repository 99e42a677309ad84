"""Tiny real runs for the tuning tests: sklearn digits, and a CSV dataset whose test split is
unreadable (any read of it fails)."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

TESTS = Path(__file__).parents[1]
sys.path.insert(0, str(TESTS / "training"))
sys.path.insert(0, str(TESTS / "data"))

from training_configs import tiny_digits_config  # noqa: E402

from dasl.config import ExperimentConfig  # noqa: E402


def digits_config(out_dir: Path, **extra: object) -> ExperimentConfig:
    """Two epochs of two batches: a trial takes about a second on one core."""
    settings = {"trainer.epochs": 2, "data.batches_per_epoch": 2, "optim.warmup_epochs": 0.0}
    settings.update(extra)
    return tiny_digits_config(out_dir, **settings)


def write_blind_csv(root: Path) -> Path:
    """``dataset.csv`` (path,label,split): 6 readable training classes of 12 JPEGs; the test
    rows are 2 classes whose files are missing and 2 whose files are not images."""
    import fixtures

    rows = []
    for c in range(6):
        for i in range(12):
            rel = f"images/train_{c}_{i}.jpg"
            fixtures.write_image(root / rel, c, i)
            rows.append([rel, f"c{c}", "train"])
    for c in range(6, 10):
        for i in range(4):
            rel = f"images/test_{c}_{i}.jpg"
            if c >= 8:
                fixtures.write_corrupt(root / rel)
            rows.append([rel, f"c{c}", "test"])
    path = root / "dataset.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "label", "split"])
        writer.writerows(rows)
    return path
