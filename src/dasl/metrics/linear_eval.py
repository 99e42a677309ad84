"""The standard linear evaluation of a self-supervised backbone: a linear classifier trained on
the frozen backbone's features of augmented crops, top-1/top-5 on the test split.

Protocol (SimCLR/MoCo/solo-learn ``main_linear.py``; head of MAE's linear probing) [C where
the papers differ]:

- the backbone is frozen and kept in eval mode, so BatchNorm uses its running statistics and
  nothing of the backbone changes (its training flag is restored afterwards);
- each epoch draws fresh augmented views through the training dataset's own transform
  (e.g. RandomResizedCrop + flip); the test dataset's transform should be the eval one
  (resize + centre crop);
- head: ``BatchNorm1d(D, affine=False)`` then ``Linear(D, C)`` (``normalize=True``; MAE's
  probe head, which makes one learning rate fit features of any scale) or the plain linear
  layer (``normalize=False``, the SimCLR/MoCo head, which needs per-backbone learning rates);
  ``W ~ N(0, 0.01^2)``, ``b = 0``;
- SGD with momentum 0.9, weight decay as given, per-step cosine learning rate to 0;
- ``augment=False`` is the fast mode: features of the training dataset (as its transform
  gives them) are extracted once and :func:`dasl.metrics.linear_probe` is fitted on them.

A plain loop rather than a Lightning module: the backbone runs under ``no_grad`` and only a
``D x C`` layer trains, so there is nothing to distribute beyond the feature pass; runs are
single-device.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from dasl.errors import ConfigError, DataError
from dasl.metrics.linear_probe import (
    check_ks,
    check_positive,
    check_sgd_settings,
    cosine_lr,
    linear_probe,
    topk_hits,
)


def _feature_fn(backbone: nn.Module | Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    """Pooled backbone features: ``EmbeddingModel.features`` when present (the features, not
    the embedding head), else the module's output, globally averaged if it is a feature map."""
    fn = getattr(backbone, "features", None)
    fn = fn if callable(fn) else backbone

    def features(x: Tensor) -> Tensor:
        out = fn(x)
        if out.ndim == 4:
            out = out.mean(dim=(2, 3))
        if out.ndim != 2:
            raise DataError(f"the backbone gave shape {tuple(out.shape)}; need (N, D) features")
        return out.float()

    return features


def _labels_of(dataset: Dataset[Any], name: str) -> np.ndarray | None:
    labels = getattr(dataset, "labels", None)
    if labels is None:
        return None
    labels = np.asarray(labels)
    if labels.size and labels.min() < 0:
        raise DataError(
            f"{name} has unlabeled items (label -1); linear evaluation needs labelled images "
            "(e.g. STL-10 split 'train', not 'train+unlabeled')"
        )
    return labels


def _num_classes(train: Dataset[Any], labels: np.ndarray | None, given: int | None) -> int:
    if given is not None:
        check_positive(given, "num_classes", integer=True)
        return int(given)
    n = getattr(train, "num_classes", None)
    if n is None:
        if labels is None:
            raise ConfigError("pass num_classes: the training dataset has no labels/num_classes")
        n = int(labels.max()) + 1
    return int(n)


@torch.no_grad()
def extract_features(
    features: Callable[[Tensor], Tensor],
    dataset: Dataset[Any],
    batch_size: int,
    device: torch.device,
    num_workers: int = 0,
) -> tuple[Tensor, Tensor]:
    """Features and labels of a whole dataset, in item order, as CPU tensors."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    feats, labels = [], []
    for x, y in loader:
        feats.append(features(x.to(device, non_blocking=True)).cpu())
        labels.append(torch.as_tensor(y, dtype=torch.int64).reshape(-1))
    if not feats:
        raise DataError("cannot extract features of an empty dataset")
    return torch.cat(feats), torch.cat(labels)


def linear_eval(
    backbone: nn.Module | Callable[[Tensor], Tensor],
    train_dataset: Dataset[Any],
    test_dataset: Dataset[Any],
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    augment: bool = True,
    weight_decay: float = 0.0,
    momentum: float = 0.9,
    normalize: bool = True,
    seed: int = 0,
    num_workers: int = 0,
    device: str | torch.device | None = None,
    num_classes: int | None = None,
    ks: tuple[int, ...] = (1, 5),
) -> dict[str, Any]:
    """Train a linear classifier on the frozen ``backbone``; return test ``{"top1", "top5"}``.

    Args:
        backbone: a module (or callable) mapping an image batch to features: an
            ``EmbeddingModel`` contributes its pooled backbone features (``.features``), any
            other module its output (a ``(N, C, H, W)`` map is globally averaged).
        train_dataset, test_dataset: ``(image, label)`` datasets with contiguous labels
            ``0..C-1`` in one label space (the classification readers: cifar10/100, stl10,
            imagenet, imagenet100); their transforms make the training crops and the test views.
        epochs, lr, batch_size, weight_decay, momentum: the SGD schedule (cosine per step).
        augment: True: fresh augmented crops each epoch (the standard protocol); False: the
            fast mode on features extracted once (:func:`dasl.metrics.linear_probe`).
        normalize: the ``BatchNorm1d(affine=False)`` before the linear layer (standardised
            features in the fast mode).
        seed: seeds the head's init, the batch order and (through a forked RNG, restored
            afterwards) the augmentation draws, so a run is reproducible on one device.
        device: where to run (default: the backbone's parameters' device, else CPU).
        num_classes: default ``train_dataset.num_classes``.
        ks: accuracies to report (``top{m}``); each needs at least ``m`` classes.

    Returns ``{"top1": ..., "top5": ..., "epochs": epochs, "augment": augment}``.
    """
    check_sgd_settings(epochs, lr, batch_size, weight_decay, momentum)
    train_labels = _labels_of(train_dataset, "train_dataset")
    _labels_of(test_dataset, "test_dataset")
    n_classes = _num_classes(train_dataset, train_labels, num_classes)
    ks = check_ks(ks, n_classes)
    if device is None:
        first = next(iter(backbone.parameters()), None) if isinstance(backbone, nn.Module) else None
        device = first.device if first is not None else torch.device("cpu")
    device = torch.device(device)
    features = _feature_fn(backbone)
    was_training = bool(getattr(backbone, "training", False))
    if isinstance(backbone, nn.Module):
        backbone.eval()  # frozen: BN running statistics are used and never updated
    try:
        cuda: list[int] = []
        if device.type == "cuda":
            cuda = [device.index if device.index is not None else torch.cuda.current_device()]
        with torch.random.fork_rng(devices=cuda):
            torch.manual_seed(seed)
            if augment:
                result = _train_augmented(
                    features, train_dataset, test_dataset, n_classes, epochs, lr, batch_size,
                    weight_decay, momentum, normalize, seed, num_workers, device, ks,
                )  # fmt: skip
            else:
                x_tr, y_tr = extract_features(features, train_dataset, batch_size, device,
                                              num_workers)  # fmt: skip
                x_te, y_te = extract_features(features, test_dataset, batch_size, device,
                                              num_workers)  # fmt: skip
                result = linear_probe(
                    x_tr.to(device), y_tr, x_te.to(device), y_te, epochs=epochs, lr=lr,
                    batch_size=batch_size, weight_decay=weight_decay, seed=seed,
                    normalize=normalize, ks=ks,
                )  # fmt: skip
    finally:
        if isinstance(backbone, nn.Module):
            backbone.train(was_training)
    return {**result, "epochs": epochs, "augment": augment}


def _train_augmented(
    features: Callable[[Tensor], Tensor],
    train_dataset: Dataset[Any],
    test_dataset: Dataset[Any],
    n_classes: int,
    epochs: int,
    lr: float,
    batch_size: int,
    weight_decay: float,
    momentum: float,
    normalize: bool,
    seed: int,
    num_workers: int,
    device: torch.device,
    ks: tuple[int, ...],
) -> dict[str, float]:
    gen = torch.Generator().manual_seed(int(seed))
    n = len(train_dataset)  # type: ignore[arg-type]  # map-style: has __len__
    # A last batch of one item would break BatchNorm's batch statistics: drop it then.
    drop_last = normalize and n % batch_size == 1
    loader = DataLoader(
        train_dataset,
        batch_size=batch_size,
        shuffle=True,
        generator=gen,
        num_workers=num_workers,
        drop_last=drop_last,
    )
    head: nn.Sequential | None = None
    opt: torch.optim.Optimizer | None = None
    total = epochs * len(loader)
    step = 0
    for _ in range(epochs):
        for x, y in loader:
            with torch.no_grad():
                f = features(x.to(device, non_blocking=True))
            if head is None:  # built at the first batch, when the feature dimension is known
                linear = nn.Linear(f.shape[1], n_classes)
                with torch.no_grad():
                    linear.weight.copy_(torch.randn(linear.weight.shape, generator=gen) * 0.01)
                    linear.bias.zero_()
                layers = [nn.BatchNorm1d(f.shape[1], affine=False)] if normalize else []
                head = nn.Sequential(*layers, linear).to(device).train()
                opt = torch.optim.SGD(
                    head.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay
                )
            assert opt is not None
            y = torch.as_tensor(y, dtype=torch.int64, device=device).reshape(-1)
            if bool((y < 0).any()) or bool((y >= n_classes).any()):
                raise DataError(f"training labels must lie in 0..{n_classes - 1}")
            for group in opt.param_groups:
                group["lr"] = cosine_lr(lr, step, total)
            loss: Tensor = F.cross_entropy(head(f), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]  # torch's Tensor.backward is unannotated
            opt.step()
            step += 1
    if head is None:
        raise DataError("the training dataset is empty")
    head.eval()
    hits = dict.fromkeys(ks, 0)
    count = 0
    test_loader = DataLoader(
        test_dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers
    )
    with torch.no_grad():
        for x, y in test_loader:
            logits = head(features(x.to(device, non_blocking=True)))
            y = torch.as_tensor(y, dtype=torch.int64, device=device).reshape(-1)
            for m, h in topk_hits(logits, y, ks).items():
                hits[m] += h
            count += y.numel()
    if count == 0:
        raise DataError("the test dataset is empty")
    return {f"top{m}": hits[m] / count for m in ks}
