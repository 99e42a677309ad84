import pickle

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from dasl.data import FileImageDataset, build_transforms, load_dataset


def test_file_dataset_end_to_end_with_transforms_and_pickle(folder_root):
    ds = load_dataset("folder", folder_root, "test")
    train_view = ds.with_transform(build_transforms("imagenet", train=True, image_size=16))
    eval_view = ds.with_transform(build_transforms("imagenet", train=False, image_size=16))
    assert train_view[0][0].shape == eval_view[0][0].shape == (3, 16, 16)
    clone = pickle.loads(pickle.dumps(eval_view))  # what DataLoader workers receive
    assert torch.equal(clone[2][0], eval_view[2][0]) and clone[2][1] == eval_view[2][1]
    x, y = next(iter(DataLoader(eval_view, batch_size=4)))
    assert x.shape == (4, 3, 16, 16) and y.dtype == torch.int64


def test_array_dataset_through_small_transform():
    ds = load_dataset("digits", None, "test", transform=build_transforms("small", train=False))
    x, _ = ds[0]
    raw = ds.with_transform(None)[0][0]
    assert x.shape == (3, 8, 8) and torch.allclose(x[1], (raw[0] - 0.5) / 0.5)


def test_constructor_validation(tmp_path):
    with pytest.raises(ValueError, match=r"labels must lie in 0\.\.1"):
        FileImageDataset(["a", "b"], np.array([0, 2]), ["x", "y"], "n", "train")
    with pytest.raises(ValueError, match="1 paths for 2 labels"):
        FileImageDataset(["a"], np.array([0, 1]), ["x", "y"], "n", "train")
    ds = FileImageDataset([tmp_path / "gone.jpg"], np.array([0]), ["x"], "n", "train")
    with pytest.raises(FileNotFoundError, match=r"gone\.jpg"):
        ds[0]
