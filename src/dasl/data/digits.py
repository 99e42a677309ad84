"""scikit-learn's bundled 8x8 digits (1,797 images), split by class like Fashion-MNIST."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dasl.data.catalog import Catalog
from dasl.data.fashion_mnist import array_catalog


def read_digits(
    train_classes: Sequence[int] | None = None, test_classes: Sequence[int] | None = None
) -> Catalog:
    """Pixels 0..16 stored as uint8 (max_value 16); train even digits, test odd by default."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.asarray(bunch.images, dtype=np.uint8)  # values are integers 0..16
    labels = np.asarray(bunch.target, dtype=np.int64)
    names = [str(d) for d in range(10)]
    catalog = array_catalog("digits", images, labels, names, 16.0, train_classes, test_classes)
    catalog.source = "scikit-learn's bundled copy"
    return catalog
