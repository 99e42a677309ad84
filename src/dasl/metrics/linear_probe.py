"""Linear probe on cached (frozen) features: the fast mode of the SSL linear evaluation.

A linear classifier ``logits = W x' + b`` on the features ``x`` (``x' = (x - mu) / sigma`` with
the training set's per-dimension mean and standard deviation when ``normalize``), trained with
cross-entropy by SGD (momentum 0.9, optional weight decay, batches of ``batch_size`` drawn in a
seeded order) under a per-step cosine learning rate ``lr_t = lr * (1 + cos(pi t / T)) / 2``,
``T = epochs * ceil(N / batch_size)``. Initialisation: ``W ~ N(0, 0.01^2)``, ``b = 0`` (the
SimCLR/MoCo linear-evaluation init). Top-1/top-5 accuracy on the test features.

Standardising with training statistics is the cached-feature form of MAE's probe head
``BatchNorm1d(affine=False) + Linear`` (which :func:`dasl.metrics.linear_eval.linear_eval`
uses on augmented crops): it makes one learning rate work for features of any scale.

Why not sklearn's ``LogisticRegression``: ImageNet's 1.28 M x 2048 cached features with 1,000
classes are out of reach of its full-batch CPU solvers (lbfgs/saga keep the whole problem in
float64 on the CPU), and the SGD + cosine recipe here is the one the augmented-crop protocol
uses, so the two modes differ only in their inputs (and their top-5 comes from the same
logits).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from dasl.errors import ConfigError, DataError
from dasl.metrics.validation import as_embeddings

_EVAL_CHUNK = 8192


@dataclass
class LinearProbe:
    """A fitted probe: ``logits = weight @ ((x - mean) / std) + bias`` over ``classes``."""

    weight: torch.Tensor
    bias: torch.Tensor
    mean: torch.Tensor | None
    std: torch.Tensor | None
    classes: np.ndarray

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.weight.device, torch.float32)
        if self.mean is not None and self.std is not None:
            x = (x - self.mean) / self.std
        return x @ self.weight.T + self.bias


def cosine_lr(lr: float, step: int, total: int) -> float:
    """``lr * (1 + cos(pi * step / total)) / 2`` (per-step cosine decay to 0, no warm-up)."""
    return lr * 0.5 * (1.0 + math.cos(math.pi * step / total))


def check_positive(value: Any, name: str, integer: bool = False, allow_zero: bool = False) -> None:
    kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    ok = isinstance(value, kinds) and not isinstance(value, bool)
    ok = ok and math.isfinite(float(value)) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        what = "int" if integer else "number"
        sign = "non-negative" if allow_zero else "positive"
        raise ConfigError(f"{name} must be a {sign} {what}; got {value!r}")


def check_sgd_settings(
    epochs: Any, lr: Any, batch_size: Any, weight_decay: Any, momentum: Any
) -> None:
    """The settings of a linear head's SGD run (probe and linear evaluation): whole
    ``epochs`` and ``batch_size`` > 0, ``lr`` > 0, ``weight_decay`` and ``momentum`` >= 0."""
    check_positive(epochs, "epochs", integer=True)
    check_positive(lr, "lr")
    check_positive(batch_size, "batch_size", integer=True)
    check_positive(weight_decay, "weight_decay", allow_zero=True)
    check_positive(momentum, "momentum", allow_zero=True)


def check_ks(ks: Any, n_classes: int) -> tuple[int, ...]:
    """``ks`` as a tuple of positive ints, each at most the number of classes."""
    ks = (ks,) if isinstance(ks, int | np.integer) and not isinstance(ks, bool) else tuple(ks)
    if not ks:
        raise ConfigError("ks is empty; give e.g. ks=(1, 5)")
    for m in ks:
        check_positive(m, "every entry of ks", integer=True)
        if m > n_classes:
            raise DataError(
                f"top-{m} accuracy needs at least {m} classes in train_labels, which has "
                f"{n_classes}; every test item would count as right. Use ks=(1,) for top-1 only"
            )
    return tuple(int(m) for m in ks)


def label_codes(
    train_labels: Any, test_labels: Any, n_train: int, n_test: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(classes, train codes, test codes)``; a test label absent from train gets code -1."""
    arrays = []
    for lab, n, name in ((train_labels, n_train, "train"), (test_labels, n_test, "test")):
        a = lab.detach().cpu().numpy() if isinstance(lab, torch.Tensor) else np.asarray(lab)
        if a.ndim != 1 or a.shape[0] != n:
            raise DataError(
                f"{name}_labels must be 1-D with one label per feature row ({n}); got {a.shape}"
            )
        arrays.append(a)
    classes, train_codes = np.unique(arrays[0], return_inverse=True)
    pos = np.searchsorted(classes, arrays[1]).clip(0, classes.size - 1)
    test_codes = np.where(classes[pos] == arrays[1], pos, -1)
    return classes, train_codes.reshape(-1).astype(np.int64), test_codes.astype(np.int64)


def topk_hits(logits: torch.Tensor, codes: torch.Tensor, ks: tuple[int, ...]) -> dict[int, int]:
    """How many rows have their code among the ``m`` largest logits (ties: smaller class)."""
    order = logits.sort(dim=1, descending=True, stable=True).indices[:, : max(ks)]
    match = order == codes[:, None]
    return {m: int(match[:, :m].any(dim=1).sum()) for m in ks}


def fit_linear_probe(
    features: Any,
    labels: Any,
    epochs: int = 100,
    lr: float = 0.1,
    batch_size: int = 256,
    weight_decay: float = 0.0,
    seed: int = 0,
    normalize: bool = True,
    momentum: float = 0.9,
) -> LinearProbe:
    """Train the probe on ``features`` (N, D) and ``labels`` (N,); see the module docstring.

    Runs on the features' device. Deterministic for a seed on a given device: the init and the
    batch order come from a CPU ``torch.Generator`` seeded with ``seed``.
    """
    check_sgd_settings(epochs, lr, batch_size, weight_decay, momentum)
    x = as_embeddings(features, "train_features")
    classes, codes, _ = label_codes(labels, labels, x.shape[0], x.shape[0])
    y = torch.from_numpy(codes).to(x.device)
    mean = std = None
    if normalize:
        mean = x.mean(dim=0)
        std = x.std(dim=0, unbiased=False)
        std = torch.where(std > 1e-12, std, torch.ones_like(std))  # constant dims: just centre
        x = (x - mean) / std
    gen = torch.Generator().manual_seed(int(seed))
    n, d = x.shape
    weight = (torch.randn(classes.size, d, generator=gen) * 0.01).to(x.device).requires_grad_()
    bias = torch.zeros(classes.size, device=x.device, requires_grad=True)
    opt = torch.optim.SGD([weight, bias], lr=lr, momentum=momentum, weight_decay=weight_decay)
    steps_per_epoch = -(-n // batch_size)
    total, step = epochs * steps_per_epoch, 0
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen).to(x.device)
        for b0 in range(0, n, batch_size):
            idx = perm[b0 : b0 + batch_size]
            for group in opt.param_groups:
                group["lr"] = cosine_lr(lr, step, total)
            loss = F.cross_entropy(x[idx] @ weight.T + bias, y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]  # torch leaves it unannotated
            opt.step()
            step += 1
    return LinearProbe(weight.detach(), bias.detach(), mean, std, classes)


def linear_probe(
    train_features: Any,
    train_labels: Any,
    test_features: Any,
    test_labels: Any,
    epochs: int = 100,
    lr: float = 0.1,
    batch_size: int = 256,
    weight_decay: float = 0.0,
    seed: int = 0,
    normalize: bool = True,
    ks: tuple[int, ...] = (1, 5),
) -> dict[str, float]:
    """Fit a linear probe on cached train features, return ``{"top1": ..., "top5": ...}`` on
    the test features (fractions; keys ``f"top{m}"`` for each entry of ``ks``).

    Defaults [C]: 100 epochs, lr 0.1 on standardised features, batch 256, no weight decay,
    SGD momentum 0.9, cosine schedule. Labels are any sortable values; a test label absent
    from the training labels counts wrong; top-5 needs at least 5 training classes
    (``ValueError``; pass ``ks=(1,)``). Logit ties rank the smaller class first.
    """
    x_te = as_embeddings(test_features, "test_features")
    n_tr = len(train_features)
    classes, _, test_codes = label_codes(train_labels, test_labels, n_tr, x_te.shape[0])
    ks = check_ks(ks, classes.size)
    probe = fit_linear_probe(
        train_features, train_labels, epochs, lr, batch_size, weight_decay, seed, normalize
    )
    if x_te.shape[1] != probe.weight.shape[1]:
        raise DataError(
            f"train_features have dimension {probe.weight.shape[1]} but test_features have "
            f"{x_te.shape[1]}; they must match"
        )
    codes = torch.from_numpy(test_codes).to(probe.weight.device)
    hits = dict.fromkeys(ks, 0)
    with torch.no_grad():
        for a0 in range(0, x_te.shape[0], _EVAL_CHUNK):
            chunk = topk_hits(
                probe.logits(x_te[a0 : a0 + _EVAL_CHUNK]), codes[a0 : a0 + _EVAL_CHUNK], ks
            )
            for m in ks:
                hits[m] += chunk[m]
    return {f"top{m}": hits[m] / x_te.shape[0] for m in ks}
