"""``dasl search`` and ``dasl export`` after a tiny real training (#16).

The data is scikit-learn's digits written as 8-bit gray PNG files in the ImageFolder layout
(``data.name=folder``): real image files, so a query file is bit-for-bit an indexed image.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from cli_output import one_line_error

from dasl.cli.main import main

PER_CLASS = 24


def _write_digits_folder(root: Path) -> Path:
    from PIL import Image
    from sklearn.datasets import load_digits

    bunch = load_digits()
    for digit in range(10):
        rows = np.flatnonzero(bunch.target == digit)[:PER_CLASS]
        for i, row in enumerate(rows):
            pixels = np.rint(bunch.images[row] * 255.0 / 16.0).astype(np.uint8)
            path = root / f"d{digit}" / f"{i:02d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels, "L").save(path)
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A one-epoch run on the digits folder, and its index folder (embed --faiss)."""
    base = tmp_path_factory.mktemp("search_export")
    data = _write_digits_folder(base / "digits")
    config = {
        "name": "tiny",
        "out_dir": str(base / "runs"),
        "data": {
            "name": "folder",
            "root": str(data),
            "in_channels": 1,
            "batch_size": 40,
            "m_per_class": 8,
            "batches_per_epoch": 3,
        },
        "model": {"backbone": "small_cnn", "embedding_dim": 16},
        "trainer": {"epochs": 1, "progress_bar": False},
        "eval": {"ks": [1], "plots": False, "raw_baseline": False, "nmi": False},
    }
    cfg = base / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(config))
    assert main(["train", "--config", str(cfg)]) == 0
    run = base / "runs" / "tiny"
    ckpt = run / "checkpoints" / "best.ckpt"
    assert ckpt.is_file()
    index = base / "index"
    assert main(["embed", "--checkpoint", str(ckpt), "--out", str(index), "--faiss"]) == 0
    return {"base": base, "data": data, "run": run, "ckpt": ckpt, "index": index}


def _search_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict:
    capsys.readouterr()
    assert main(["search", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _reference_neighbors(
    emb: np.ndarray, query: np.ndarray, k: int
) -> tuple[list[float], list[int]]:
    """1 - cos to every indexed row in float64 with explicit loops; (distance, index) order."""
    q = query.astype(np.float64)
    q = q / np.sqrt(sum(v * v for v in q))
    scored = []
    for i, row in enumerate(emb.astype(np.float64)):
        r = row / np.sqrt(sum(v * v for v in row))
        scored.append((1.0 - sum(a * b for a, b in zip(q, r, strict=True)), i))
    scored.sort()
    return [d for d, _ in scored[:k]], [i for _, i in scored[:k]]


@pytest.mark.parametrize("command", ["search", "export"])
def test_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0 and f"usage: dasl {command}" in capsys.readouterr().out


def test_embed_records_what_search_needs(trained: dict[str, Path]) -> None:
    record = json.loads((trained["index"] / "embed.json").read_text())
    assert record["format"] == 2 and record["distance"] == "cosine"
    pre = record["preprocessing"]
    assert pre["image_mode"] == "L" and pre["in_channels"] == 1
    assert pre["mean"] == [0.5] and pre["std"] == [0.5]
    assert pre["input_size"] is None  # image files under "small" keep their own size
    labels = np.load(trained["index"] / "labels.npy")
    assert len(record["items"]) == len(labels) == record["shape"][0]
    # Test classes are the second half (d5..d9); each item's folder is its class.
    for item, label in zip(record["items"], labels, strict=True):
        assert Path(item).is_absolute() and Path(item).parent.name == record["class_names"][label]
    from dasl.deploy.index_folder import file_sha256

    assert record["checkpoint_sha256"] == file_sha256(trained["ckpt"])


def test_search_finds_the_query_itself_first(
    trained: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    index = trained["index"]
    record = json.loads((index / "embed.json").read_text())
    items = record["items"]
    picks = [0, 37, len(items) - 1]
    queries = [items[i] for i in picks]
    doc = _search_json(["--index", str(index), *queries, "-k", "7"], capsys)
    assert doc["k"] == 7 and doc["distance"] == "cosine"
    emb = np.load(index / "embeddings.npy")
    for pick, query, result in zip(picks, queries, doc["queries"], strict=True):
        hits = result["neighbors"]
        assert result["query"] == query and len(hits) == 7
        assert hits[0]["path"] == query and hits[0]["item"] == pick
        assert hits[0]["distance"] == pytest.approx(0.0, abs=1e-5)
        assert hits[0]["class"] == Path(query).parent.name
        for h in hits:
            assert h["class"] == record["class_names"][h["label"]]
            assert h["path"] == items[h["item"]]
        # Against a float64 reference over the stored embeddings: same distances; the same
        # items wherever distances are not tied within rounding.
        ref_d, ref_i = _reference_neighbors(emb, emb[pick], 7)
        got_d = [h["distance"] for h in hits]
        np.testing.assert_allclose(got_d, ref_d, atol=1e-5)
        assert got_d == sorted(got_d)
        for r, (d, i) in enumerate(zip(ref_d, ref_i, strict=True)):
            tied = [j for j, dd in zip(ref_i, ref_d, strict=True) if abs(dd - d) < 1e-5]
            assert hits[r]["item"] == i or hits[r]["item"] in tied


def test_search_prints_a_table(
    trained: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    query = json.loads((trained["index"] / "embed.json").read_text())["items"][5]
    capsys.readouterr()
    assert main(["search", "--index", str(trained["index"]), query, "-k", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"query: {query}"
    assert "rank" in lines[1] and "distance (1 - cos)" in lines[1]
    assert len(lines) == 5 and lines[2].split()[0] == "1" and lines[2].endswith(query)


def _refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert main(argv) == 2
    return one_line_error(capsys)


def test_search_bad_input_one_line(
    trained: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index = trained["index"]
    query = json.loads((index / "embed.json").read_text())["items"][0]
    missing = tmp_path / "nowhere"
    line = _refused(["search", "--index", str(missing), query], capsys)
    assert str(missing) in line and "no such folder" in line
    text = tmp_path / "notes.png"
    text.write_text("not an image\n")
    line = _refused(["search", "--index", str(index), str(text)], capsys)
    assert str(text) in line and "not an image" in line
    line = _refused(["search", "--index", str(index), str(tmp_path / "q.png")], capsys)
    assert "q.png" in line and "no such file" in line
    line = _refused(["search", "--index", str(index), str(tmp_path)], capsys)
    assert "a folder; pass image files" in line
    line = _refused(["search", "--index", str(index), query, "-k", "0"], capsys)
    assert "-k" in line


def _copy_index(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def _edit_manifest(folder: Path, **changes: object) -> None:
    path = folder / "embed.json"
    record = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            record.pop(key)
        else:
            record[key] = value
    path.write_text(json.dumps(record))


def test_search_refuses_other_index_versions(
    trained: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    query = json.loads((trained["index"] / "embed.json").read_text())["items"][0]
    # The manifest dasl embed wrote before #16: no format, preprocessing or items.
    old = _copy_index(trained["index"], tmp_path / "old")
    _edit_manifest(old, format=None, preprocessing=None, items=None, class_names=None)
    line = _refused(["search", "--index", str(old), query], capsys)
    assert "older dasl embed" in line and "dasl embed --checkpoint" in line
    newer = _copy_index(trained["index"], tmp_path / "newer")
    _edit_manifest(newer, format=99, dasl_version="9.0")
    line = _refused(["search", "--index", str(newer), query], capsys)
    assert "another dasl version" in line and "99" in line
    changed = _copy_index(trained["index"], tmp_path / "changed")
    _edit_manifest(changed, checkpoint_sha256="0" * 64)
    line = _refused(["search", "--index", str(changed), query], capsys)
    assert "has changed since the index was built" in line
    damaged = _copy_index(trained["index"], tmp_path / "damaged")
    (damaged / "index.faiss").write_bytes(b"\0" * 64)
    line = _refused(["search", "--index", str(damaged), query], capsys)
    assert "index.faiss does not match embed.json" in line
    incomplete = _copy_index(trained["index"], tmp_path / "incomplete")
    (incomplete / "embed.json").unlink()
    line = _refused(["search", "--index", str(incomplete), query], capsys)
    assert "no embed.json" in line


def test_embed_without_faiss_cannot_be_searched(
    trained: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "plain"
    assert main(["embed", "--checkpoint", str(trained["ckpt"]), "--out", str(out)]) == 0
    query = json.loads((out / "embed.json").read_text())["items"][0]
    line = _refused(["search", "--index", str(out), query], capsys)
    assert "no faiss index" in line and "--faiss" in line


def test_in_memory_datasets_are_referenced_by_split_position(
    trained: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "digits"
    argv = ["embed", "--checkpoint", str(trained["ckpt"]), "--dataset", "digits"]
    assert main([*argv, "--out", str(out), "--faiss"]) == 0
    record = json.loads((out / "embed.json").read_text())
    n = record["shape"][0]
    assert record["items"] == [f"digits:test[{i}]" for i in range(n)]
    assert record["preprocessing"]["input_size"] == [8, 8]  # arrays: one size for all
    # A query of another size is resized to the model's input size, with a note.
    from PIL import Image

    big = tmp_path / "big.png"
    Image.fromarray(np.full((16, 16), 200, dtype=np.uint8), "L").save(big)
    capsys.readouterr()
    assert main(["search", "--index", str(out), str(big), "-k", "2", "--json"]) == 0
    captured = capsys.readouterr()
    assert f"note: {big}: resized from 16x16 to 8x8 px" in captured.err
    hits = json.loads(captured.out)["queries"][0]["neighbors"]
    assert [h["path"] for h in hits] == [record["items"][h["item"]] for h in hits]


def _test_images(trained: dict[str, Path], count: int) -> tuple[list[str], np.ndarray]:
    """The first ``count`` indexed image files, preprocessed as the index records it."""
    import torch

    from dasl.deploy import Preprocessing

    record = json.loads((trained["index"] / "embed.json").read_text())
    pre = Preprocessing.from_json(record["preprocessing"])
    paths = record["items"][:count]
    return paths, torch.stack([pre.load(p) for p in paths]).numpy()


@pytest.mark.filterwarnings(r"ignore:`torch\.jit\.load` is deprecated:FutureWarning")
@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_export_matches_pytorch_on_real_images(
    fmt: str, trained: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    from dasl.training.checkpoint_io import load_checked_module

    out = tmp_path / f"model.{fmt}"
    capsys.readouterr()
    assert (
        main(["export", "--checkpoint", str(trained["ckpt"]), "--format", fmt, "--out", str(out)])
        == 0
    )
    printed = capsys.readouterr().out
    assert "checked: max |exported - PyTorch|" in printed
    meta = json.loads((out.parent / f"{out.name}.json").read_text())
    assert meta["input"]["shape"] == ["N", 1, 8, 8] and meta["output"]["shape"] == ["N", 16]
    assert meta["distance"] == "cosine" and meta["l2_normalized"] is True
    assert meta["preprocessing"]["mean"] == [0.5] and meta["preprocessing"]["std"] == [0.5]

    paths, x = _test_images(trained, 12)
    module = load_checked_module(trained["ckpt"]).eval()
    with torch.no_grad():
        expected = module(torch.from_numpy(x)).numpy()
    if fmt == "onnx":
        import onnx
        import onnxruntime as ort

        runtime = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        got = runtime.run(["embeddings"], {"images": x})[0]
        inside = {p.key: p.value for p in onnx.load(str(out)).metadata_props}["dasl"]
        assert json.loads(inside) == meta
        one = runtime.run(["embeddings"], {"images": x[:1]})[0]  # the batch size is free
        np.testing.assert_allclose(one, expected[:1], rtol=0, atol=1e-5)
    else:
        extra = {"dasl.json": ""}
        loaded = torch.jit.load(str(out), _extra_files=extra)
        with torch.no_grad():
            got = loaded(torch.from_numpy(x)).numpy()
        assert json.loads(extra["dasl.json"]) == meta
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    # ... and dasl embed wrote the same rows for those files.
    stored = np.load(trained["index"] / "embeddings.npy")[: len(paths)]
    np.testing.assert_allclose(got, stored, rtol=0, atol=1e-5)


def test_export_takes_a_run_folder(
    trained: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run.onnx"
    capsys.readouterr()
    assert (
        main(["export", "--checkpoint", str(trained["run"]), "--format", "onnx", "--out", str(out)])
        == 0
    )
    assert f"checkpoint: {trained['ckpt']}" in capsys.readouterr().out
    meta = json.loads((tmp_path / "run.onnx.json").read_text())
    assert meta["checkpoint"] == str(trained["ckpt"].resolve())


def test_export_bad_input_one_line(
    trained: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = ["--format", "onnx", "--out", str(tmp_path / "m.onnx")]
    text = tmp_path / "notes.ckpt"
    text.write_text("not a checkpoint\n")
    line = _refused(["export", "--checkpoint", str(text), *out], capsys)
    assert str(text) in line and "not a complete PyTorch checkpoint" in line
    line = _refused(["export", "--checkpoint", str(tmp_path / "none"), *out], capsys)
    assert "no such file or folder" in line
    compare = tmp_path / "cmp"
    for variant in ("a", "b"):
        (compare / variant / "checkpoints").mkdir(parents=True)
    line = _refused(["export", "--checkpoint", str(compare), *out], capsys)
    assert "2 variants (a, b)" in line and str(compare / "a") in line
    # Python's own way of making a package unimportable: the line names the pip command.
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    line = _refused(["export", "--checkpoint", str(trained["ckpt"]), *out], capsys)
    assert "onnxscript" in line and "pip install" in line
    assert not (tmp_path / "m.onnx").exists()
