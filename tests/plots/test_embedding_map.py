import numpy as np
import pytest
from png_checks import check_png

from dasl.plots import plot_embedding_maps, project_2d, stratified_subsample


def test_stratified_subsample_keeps_class_shares():
    labels = np.repeat([0, 1, 2], [600, 300, 3])
    idx = stratified_subsample(labels, 90, seed=0)
    assert np.array_equal(idx, np.sort(idx)) and len(set(idx)) == len(idx)
    counts = np.bincount(labels[idx])
    assert counts.tolist() == [59, 29, 1]
    assert np.array_equal(idx, stratified_subsample(labels, 90, seed=0))
    assert not np.array_equal(idx, stratified_subsample(labels, 90, seed=1))
    assert np.array_equal(stratified_subsample(labels, 10_000), np.arange(903))


@pytest.mark.parametrize("method", ["tsne", "pca"])
def test_project_2d_shape_and_determinism(blobs, method):
    emb = blobs[0][::3]  # 20 points keep t-SNE quick
    a = project_2d(emb, method=method, seed=0)
    assert a.shape == (20, 2) and np.isfinite(a).all()
    np.testing.assert_allclose(project_2d(emb, method=method, seed=0), a)


def test_map_png_one_method_tsne(tmp_path, blobs):
    emb, labels = blobs
    out = plot_embedding_maps({"dasl": emb}, labels, tmp_path / "map.png", max_points=40)
    w, h = check_png(out)
    assert (w, h) == (round((4.2 + 1.8) * 120), round(4.4 * 120))


def test_map_png_several_methods_with_names(tmp_path, blobs):
    emb, labels = blobs
    names = ["shirt", "bag", "boot", "coat"]
    methods = {"baseline": emb, "dasl": emb[:, ::-1], "raw": emb * 2}
    out = plot_embedding_maps(
        methods, labels, tmp_path / "map3.png", class_names=names, method="pca"
    )
    w, _ = check_png(out)
    assert w == round((3 * 4.2 + 1.8) * 120)


def test_map_many_classes_and_bad_input(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(30), 3)
    emb = rng.normal(size=(90, 5))
    check_png(plot_embedding_maps({"a": emb}, labels, tmp_path / "many.png", method="pca"))
    with pytest.raises(ValueError, match="labels has 89 entries"):
        plot_embedding_maps({"a": emb}, labels[:-1], tmp_path / "x.png", method="pca")
    with pytest.raises(ValueError, match="valid values are"):
        plot_embedding_maps({"a": emb}, labels, tmp_path / "x.png", method="umap")
    assert not (tmp_path / "x.png").exists()
