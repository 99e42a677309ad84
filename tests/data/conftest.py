"""Shared fixtures: tiny datasets in the official layouts (builders live in fixtures.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import fixtures


@pytest.fixture
def fmnist_root(tmp_path: Path) -> Path:
    return fixtures.make_fashion_mnist_files(tmp_path / "fmnist", n_per_class=6, n_test_per_class=2)


@pytest.fixture
def folder_root(tmp_path: Path) -> Path:
    return fixtures.make_folder_tree(tmp_path / "folder", ("a", "b", "c", "d"), per_class=3)


@pytest.fixture
def cub_root(tmp_path: Path) -> Path:
    return fixtures.make_cub_tree(tmp_path / "cub")


@pytest.fixture
def cars_root(tmp_path: Path) -> Path:
    return fixtures.make_cars_tree(tmp_path / "cars")


@pytest.fixture
def sop_root(tmp_path: Path) -> Path:
    return fixtures.make_sop_tree(tmp_path / "sop")


@pytest.fixture
def inshop_root(tmp_path: Path) -> Path:
    return fixtures.make_inshop_tree(tmp_path / "inshop")
