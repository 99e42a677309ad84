import numpy as np
import torch

from dasl.data import load_dataset
from dasl.evaluation import evaluate_embeddings, raw_pixels
from dasl.metrics import retrieval_metrics


def _data(n=12, d=4, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    return (rng.normal(size=(3, d))[y] + rng.normal(size=(n, d))).astype(np.float32), y


def test_drops_k_larger_than_the_gallery():
    x, y = _data()
    got = evaluate_embeddings(x, y, (1, 4, 11, 12, 100), nmi=False)
    # self-gallery: 11 items besides the query, so K=12 and K=100 are dropped
    assert [k for k in got if k.startswith("recall@")] == ["recall@1", "recall@4", "recall@11"]
    assert got == retrieval_metrics(x, y, ks=(1, 4, 11), nmi=False)
    xr, yr = _data(n=5, seed=1)
    got = evaluate_embeddings(x, y, (1, 5, 6), nmi=False, ref=xr, ref_labels=yr)
    assert [k for k in got if k.startswith("recall@")] == ["recall@1", "recall@5"]
    assert got == retrieval_metrics(x, y, ks=(1, 5), ref=xr, ref_labels=yr, nmi=False)


def test_raw_pixels_are_the_untransformed_images():
    ds = load_dataset("digits", None, "test", transform=lambda img: img * 0 + 7.0)
    out = raw_pixels(ds, batch_size=64)
    assert out is not None
    x, y = out
    plain = ds.with_transform(None)
    assert x.shape == (len(ds), plain[0][0].numel()) and x.dtype == np.float32
    for i in (0, 17, len(ds) - 1):
        np.testing.assert_array_equal(x[i], plain[i][0].flatten().numpy())
        assert y[i] == plain[i][1]
    assert float(np.abs(x - 7.0).max()) > 0  # the transform was not applied


def test_raw_pixels_none_for_image_files(tmp_path):
    from PIL import Image

    for c in range(2):
        (tmp_path / f"class{c}").mkdir()
        for i in range(2):
            Image.new("RGB", (4, 4), (c * 100, i, 0)).save(tmp_path / f"class{c}" / f"{i}.png")
    ds = load_dataset("folder", tmp_path, "train", train_classes=["class0", "class1"])
    assert raw_pixels(ds) is None
    assert torch.is_tensor(load_dataset("digits", None, "test")[0][0])
