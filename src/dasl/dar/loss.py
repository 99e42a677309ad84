"""DASL losses: a base similarity loss plus ``lam`` times the difference alignment regularizer.

``F = L_base + lam * R_align`` (METHOD.md, "Objective"). The wrappers keep
pytorch-metric-learning's call signature, so PML users change one line.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn

from dasl.dar.regularizer import DifferenceAlignmentRegularizer
from dasl.dar.validation import check_batch


def _check_lam(lam: object) -> float:
    if isinstance(lam, bool) or not isinstance(lam, int | float) or not lam >= 0:
        raise ValueError(f"lam must be a non-negative number, got {lam!r}")
    return float(lam)


class DASLLoss(nn.Module):
    """``base_loss(...) + lam * R_align(embeddings, labels)`` with PML's call signature.

    ``forward(embeddings, labels, indices_tuple=None, ref_emb=None, ref_labels=None)``: the base
    loss gets all arguments unchanged; the regularizer sees the embeddings the loss sees:
    ``embeddings`` with ``labels``, and when ``ref_emb`` is given, ``cat(embeddings, ref_emb)``
    with ``cat(labels, ref_labels)``. ``indices_tuple`` only affects the base loss. With
    ``lam == 0`` the regularizer is not computed and the base loss is returned as is.

    ``base_loss`` is a submodule, so its parameters (e.g. ProxyAnchor proxies) are in
    ``parameters()``; ``loss_parameters()`` yields just those, for the separate (usually higher
    learning rate) optimizer group PML recommends for proxies.

    The last values, detached (no host sync), are kept for logging in ``last_base_loss`` and
    ``last_regularizer`` (``None`` when ``lam == 0``: not computed).

    Example:
        >>> import torch
        >>> from pytorch_metric_learning.losses import ProxyAnchorLoss
        >>> from dasl.dar import DASLLoss
        >>> loss_fn = DASLLoss(ProxyAnchorLoss(num_classes=3, embedding_size=8), lam=0.1)
        >>> z = torch.randn(6, 8, requires_grad=True)
        >>> y = torch.tensor([0, 0, 1, 1, 2, 2])
        >>> loss = loss_fn(z, y)
        >>> loss.backward()
        >>> opt = torch.optim.AdamW([{"params": [z]},
        ...                          {"params": list(loss_fn.loss_parameters()), "lr": 1e-2}])
    """

    def __init__(
        self,
        base_loss: nn.Module,
        regularizer: nn.Module | None = None,
        lam: float = 1.0,
    ) -> None:
        super().__init__()
        if not callable(base_loss):
            raise ValueError(f"base_loss must be a callable loss module, got {base_loss!r}")
        self.base_loss = base_loss
        self.regularizer = (
            regularizer if regularizer is not None else (DifferenceAlignmentRegularizer())
        )
        self.lam = _check_lam(lam)
        self.last_base_loss: Tensor | None = None
        self.last_regularizer: Tensor | None = None

    def loss_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of the base loss (e.g. ProxyAnchor proxies) for the optimizer."""
        if isinstance(self.base_loss, nn.Module):
            return self.base_loss.parameters()
        return iter(())

    def forward(
        self,
        embeddings: Tensor,
        labels: Tensor | None = None,
        indices_tuple: Any = None,
        ref_emb: Tensor | None = None,
        ref_labels: Tensor | None = None,
    ) -> Tensor:
        if labels is None:
            raise ValueError(
                "DASLLoss needs labels: the difference alignment regularizer compares "
                "differences between inter-class pairs (pass class ids, or instance ids for "
                "self-supervised pairs)"
            )
        if ref_emb is not None and ref_labels is None:
            raise ValueError(
                "ref_emb was given without ref_labels; DASLLoss regularizes ref_emb too and "
                "needs their labels"
            )
        check_batch(embeddings, labels)  # before the base loss: our messages are clearer
        if ref_emb is not None:
            assert ref_labels is not None
            check_batch(ref_emb, ref_labels)
        # Any ``loss(embeddings, labels)`` works: the PML-only arguments are passed only
        # when the caller gives them.
        if indices_tuple is None and ref_emb is None:
            base = self.base_loss(embeddings, labels)
        else:
            base = self.base_loss(embeddings, labels, indices_tuple, ref_emb, ref_labels)
        self.last_base_loss = base.detach()
        if self.lam == 0.0:
            self.last_regularizer = None
            return base
        emb, lab = embeddings, labels
        if ref_emb is not None:
            emb = torch.cat([embeddings, ref_emb.to(embeddings.dtype)], dim=0)
            lab = torch.cat([labels, ref_labels.to(labels.device)], dim=0)
        reg = self.regularizer(emb, lab)
        self.last_regularizer = reg.detach()
        return base + self.lam * reg

    def extra_repr(self) -> str:
        return f"lam={self.lam}"


class TwoViewDASLLoss(nn.Module):
    """Two augmented views, lightly-style ``forward(z0, z1)``: instance-level DASL.

    With ``B`` rows per view: ``embeddings = cat(z0, z1)`` and ``labels = cat(arange(B),
    arange(B))`` (the two views of an image share an id), loss
    ``base_loss(embeddings, labels) + lam * R_align(embeddings, labels)``. With PML's
    ``NTXentLoss`` the base term is SimCLR's NT-Xent over all ``2B`` anchors.

    Example:
        >>> import torch
        >>> from pytorch_metric_learning.losses import NTXentLoss
        >>> from dasl.dar import TwoViewDASLLoss
        >>> loss_fn = TwoViewDASLLoss(NTXentLoss(temperature=0.1), lam=0.5)
        >>> z0, z1 = torch.randn(4, 16), torch.randn(4, 16)
        >>> loss = loss_fn(z0, z1)
    """

    def __init__(
        self,
        base_loss: nn.Module,
        regularizer: nn.Module | None = None,
        lam: float = 1.0,
    ) -> None:
        super().__init__()
        self.inner = DASLLoss(base_loss, regularizer, lam)

    @property
    def lam(self) -> float:
        return self.inner.lam

    @property
    def last_base_loss(self) -> Tensor | None:
        return self.inner.last_base_loss

    @property
    def last_regularizer(self) -> Tensor | None:
        return self.inner.last_regularizer

    def loss_parameters(self) -> Iterator[nn.Parameter]:
        return self.inner.loss_parameters()

    def forward(self, z0: Tensor, z1: Tensor) -> Tensor:
        for name, z in (("z0", z0), ("z1", z1)):
            if not isinstance(z, Tensor) or z.dim() != 2:
                shape = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
                raise ValueError(f"{name} must be a 2-D tensor (batch, dim), got {shape}")
        if z0.shape != z1.shape:
            raise ValueError(
                f"z0 and z1 must have the same shape (one row per image in each view), got "
                f"{tuple(z0.shape)} and {tuple(z1.shape)}"
            )
        batch = z0.shape[0]
        ids = torch.arange(batch, device=z0.device)
        return self.inner(torch.cat([z0, z1], dim=0), torch.cat([ids, ids], dim=0))


def dasl_np(lam: float = 1.0, **regularizer_kwargs: Any) -> DASLLoss:
    """DASL-NP: PML ``NPairsLoss()`` + ``lam * R_align`` (kwargs go to the regularizer)."""
    from pytorch_metric_learning.losses import NPairsLoss

    return DASLLoss(NPairsLoss(), DifferenceAlignmentRegularizer(**regularizer_kwargs), lam)


def dasl_pa(
    num_classes: int,
    embedding_size: int,
    lam: float = 1.0,
    margin: float = 0.1,
    alpha: float = 32,
    **regularizer_kwargs: Any,
) -> DASLLoss:
    """DASL-PA: PML ``ProxyAnchorLoss(num_classes, embedding_size, margin, alpha)`` +
    ``lam * R_align``. The proxies are ``loss_parameters()``."""
    from pytorch_metric_learning.losses import ProxyAnchorLoss

    base = ProxyAnchorLoss(num_classes, embedding_size, margin=margin, alpha=alpha)
    return DASLLoss(base, DifferenceAlignmentRegularizer(**regularizer_kwargs), lam)
