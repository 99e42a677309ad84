import numpy as np
import pytest
from png_checks import check_png

from dasl.plots import plot_embedding_maps, project_2d, stratified_subsample
from dasl.plots.embedding_map import embedding_map_data, embedding_map_figure, largest_classes


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
    assert (w, h) == (round((4.2 + 1.8) * 120), round(4.6 * 120))


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
    with pytest.raises(ValueError, match=r"unknown map method 'umap'; choose one of tsne, pca"):
        plot_embedding_maps({"a": emb}, labels, tmp_path / "x.png", method="umap")
    assert not (tmp_path / "x.png").exists()


# ---------------------------------------------------------------- readable subset (#16)


def _sizes_reference(labels, n):
    """Independent rule: sort (-count, id) with Python's sorted over a dict of counts."""
    counts = {}
    for y in labels.tolist():
        counts[y] = counts.get(y, 0) + 1
    return [c for c, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))][:n]


def test_largest_classes_count_then_id():
    # sizes: 7 -> 12, {2, 5, 9} -> 10 (a tie), 1 -> 3
    labels = np.repeat([9, 5, 7, 1, 2], [10, 10, 12, 3, 10])
    assert largest_classes(labels, 3).tolist() == [7, 2, 5]
    assert largest_classes(labels, 10).tolist() == [7, 2, 5, 9, 1]
    rng = np.random.default_rng(3)
    for _ in range(20):
        labels = rng.permutation(np.repeat(rng.permutation(50)[:30], rng.integers(1, 5, 30)))
        assert largest_classes(labels, 20).tolist() == _sizes_reference(labels, 20)
    with pytest.raises(ValueError, match="positive int"):
        largest_classes(labels, 0)


def _planted(n_classes=30, dim=32, seed=0):
    """Classes of 8-12 points around centres on a 2-D grid (spacing 10, noise 0.3) embedded
    in ``dim`` dimensions by a random orthonormal pair."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(8, 13, n_classes)
    labels = rng.permutation(np.repeat(np.arange(n_classes), sizes))
    grid = np.stack(np.meshgrid(np.arange(6), np.arange(5)), -1).reshape(-1, 2)[:n_classes]
    basis = np.linalg.qr(rng.normal(size=(dim, 2)))[0].T
    centres = 10.0 * grid @ basis
    emb = centres[labels] + 0.3 * rng.normal(size=(labels.shape[0], dim))
    return emb, labels


def _separated(xy, labels):
    """Every point is nearer its own class centroid than any other, and each class's
    radius is under a quarter of the nearest other centroid's distance."""
    classes = np.unique(labels)
    cent = np.stack([xy[labels == c].mean(0) for c in classes])
    d = np.linalg.norm(xy[:, None, :] - cent[None], axis=-1)
    own = np.searchsorted(classes, labels)
    nearest_ok = bool((d.argmin(1) == own).all())
    gaps = np.linalg.norm(cent[:, None] - cent[None], axis=-1) + np.eye(len(classes)) * 1e9
    radius = np.array([d[labels == c, k].max() for k, c in enumerate(classes)])
    return nearest_ok and bool((radius < gaps.min(1) / 4).all())


def test_map_data_of_planted_clusters():
    # PCA: the planted plane is the top-2 principal subspace, so the grid comes back exactly
    # (t-SNE takes minutes on a loaded 2-core machine; its determinism is tested above).
    emb, labels = _planted()
    data = embedding_map_data({"a": emb, "b": -emb}, labels, method="pca", seed=0)
    expected = _sizes_reference(labels, 20)
    assert data.classes.tolist() == expected
    # every point of the chosen classes (they fit in max_points), none of the others, in order
    np.testing.assert_array_equal(data.index, np.nonzero(np.isin(labels, expected))[0])
    np.testing.assert_array_equal(data.labels, labels[data.index])
    assert (data.total_classes, data.total_points) == (30, labels.shape[0])
    assert data.title() == f"20 of 30 classes (the largest), {data.index.shape[0]} points"
    for xy in data.coords.values():
        assert xy.shape == (data.index.shape[0], 2)
        assert _separated(xy, data.labels)


def test_separation_check_can_fail():
    _, labels = _planted()
    rng = np.random.default_rng(0)
    assert not _separated(rng.normal(size=(labels.shape[0], 2)), labels)


def test_map_figure_draws_the_data():
    emb, labels = _planted()
    data = embedding_map_data({"a": emb}, labels, method="pca")
    names = {c: f"class-{c}" for c in range(30)}
    fig = embedding_map_figure(data, names)
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == [f"class-{c}" for c in data.classes]
    assert fig._suptitle.get_text() == data.title()
    ax = fig.axes[0]
    colours = set()
    for coll, c in zip(ax.collections, data.classes, strict=True):
        np.testing.assert_array_equal(coll.get_offsets(), data.coords["a"][data.labels == c])
        colours.add(tuple(np.round(coll.get_facecolor()[0], 4)))
    assert len(colours) == 20  # distinct colours


def test_map_of_few_classes_says_all(blobs):
    emb, labels = blobs
    data = embedding_map_data({"a": emb}, labels, method="pca")
    assert data.title() == "all 4 classes, 60 points"
