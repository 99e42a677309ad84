import io

import numpy as np
import pytest
import torch
from PIL import Image
from report_fixtures import planted, reference_neighbours, reference_per_class

from dasl.metrics import retrieval_metrics
from dasl.reporting.retrieval_view import (
    best_and_worst,
    neighbours,
    per_class_recall_at_1,
    sample_queries,
)
from dasl.reporting.thumbnails import thumbnail_png


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_per_class_recall_at_1_against_loops(seed):
    emb, labels = planted(seed)
    nn = neighbours(emb, 5)
    ref = reference_neighbours(emb, 5)
    assert nn.tolist() == ref
    classes, recall, counts = per_class_recall_at_1(labels, labels[nn[:, 0]])
    expected = reference_per_class(labels, ref)
    assert classes.tolist() == sorted(expected)
    np.testing.assert_array_equal(recall, [expected[c][0] for c in classes])
    np.testing.assert_array_equal(counts, [expected[c][1] for c in classes])
    assert recall.min() < recall.max()  # the planted noise makes some mistakes
    # weighted by the queries, the classes give the run's Recall@1
    r1 = retrieval_metrics(emb, labels, ks=(1,), nmi=False)["recall@1"]
    assert float((recall * counts).sum() / counts.sum()) == pytest.approx(r1, abs=1e-12)


def test_neighbours_of_a_separate_gallery():
    q = np.array([[1.0, 0.0], [0.0, 1.0]])
    g = np.array([[0.0, 2.0], [3.0, 0.1], [1.0, 1.0]])
    assert neighbours(q, 5, ref=g).tolist() == [[1, 2, 0], [0, 2, 1]]
    with pytest.raises(ValueError, match="gallery is empty"):
        neighbours(q[:1], 5)


def test_best_and_worst_ties_by_class_id():
    classes = np.array([4, 7, 9, 12, 20])
    recall = np.array([1.0, 0.5, 1.0, 0.0, 0.5])
    best, worst = best_and_worst(classes, recall, 3)
    assert classes[best].tolist() == [4, 9, 7]
    assert classes[worst].tolist() == [12, 7, 20]


def test_sample_queries_seeded_sorted_distinct():
    a = sample_queries(100, 12, seed=0)
    assert a.tolist() == sorted(set(a.tolist())) and a.shape == (12,)
    assert np.array_equal(a, sample_queries(100, 12, seed=0))
    assert not np.array_equal(a, sample_queries(100, 12, seed=1))
    assert sample_queries(5, 12).tolist() == [0, 1, 2, 3, 4]


def test_thumbnails_of_tensors_and_pil_images():
    t = torch.zeros(1, 8, 8)
    t[0, 2, 3] = 1.0
    with Image.open(io.BytesIO(thumbnail_png(t, size=72))) as im:
        assert im.size == (72, 72) and im.mode == "L"
        assert im.getpixel((3 * 9 + 4, 2 * 9 + 4)) == 255 and im.getpixel((0, 0)) == 0
    rgb = Image.new("RGB", (30, 20), (10, 200, 30))
    with Image.open(io.BytesIO(thumbnail_png(rgb, size=72))) as im:
        assert im.size == (72, 48) and im.getpixel((5, 5)) == (10, 200, 30)
    with Image.open(io.BytesIO(thumbnail_png(torch.rand(3, 16, 8)))) as im:
        assert im.size == (36, 72) and im.mode == "RGB"
