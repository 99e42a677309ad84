"""Datasets (official layouts, class-disjoint splits), samplers and transforms.

>>> from dasl.data import load_dataset
>>> ds = load_dataset("digits", None, "train")
>>> ds.describe()
'digits train: 891 images, 5 classes'
"""

from dasl.data.check import DatasetReport, SplitCounts, check_dataset
from dasl.data.dataset import (
    ArrayImageDataset,
    FileImageDataset,
    ImageDataset,
    UnreadableImageError,
)
from dasl.data.fashion_mnist import download_fashion_mnist, fashion_mnist_available
from dasl.data.glyphs import glyphs_available
from dasl.data.registry import DATASET_NAMES, load_dataset
from dasl.data.samplers import MPerClassBatchSampler, RandomBatchSampler
from dasl.data.transforms import build_transforms

__all__ = [
    "DATASET_NAMES",
    "ArrayImageDataset",
    "DatasetReport",
    "FileImageDataset",
    "ImageDataset",
    "MPerClassBatchSampler",
    "RandomBatchSampler",
    "SplitCounts",
    "UnreadableImageError",
    "build_transforms",
    "check_dataset",
    "download_fashion_mnist",
    "fashion_mnist_available",
    "glyphs_available",
    "load_dataset",
]
