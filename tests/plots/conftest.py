import numpy as np
import pytest


@pytest.fixture
def blobs():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 15)
    centers = rng.normal(size=(4, 6)) * 4
    emb = centers[labels] + rng.normal(size=(60, 6))
    return emb, labels
