"""Numbers from outside the poster, for context beside a reproduction, each with its source.

Only numbers the project's notes on the field (collected 2026-12-07; the sources named
below) give; each setup differs from the poster's in ways the ``setup`` field names, so an
anchor is context, not a target. "A Metric Learning Reality Check" (Musgrave et al., ECCV
2020) measures ProxyAnchor and N-pair under its own protocol (BN-Inception, 4 class-disjoint
folds, 128/512-d, MAP@R, P@1, R-precision); the project's notes hold none of its numbers,
so none are quoted (:data:`MLRC_NOTE`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Anchor:
    method: str
    setup: str
    metric: str
    """Our metric key (the anchor's metric read as ours: CMC@1 = R@1)."""
    value: float
    """Percent."""
    source: str


_HYP_VIT = "Hyp-ViT paper (CVPR 2022) table, as quoted in the SEE README"
_PA_REPO = "tjddus9597/Proxy-Anchor-CVPR2020 README (the ProxyAnchor authors)"
_OML_ZOO = "OML model zoo (OML-Team/open-metric-learning docs/readme/zoo.md, CMC@1 at 224 px)"

ANCHORS: dict[str, tuple[Anchor, ...]] = {
    "cub200": (
        Anchor("ProxyAnchor", "BN-Inception, 512-d", "recall@1", 68.4, _HYP_VIT),
        Anchor("ProxyAnchor", "ResNet-50, 512-d", "recall@1", 69.9, _PA_REPO),
    ),
    "cars196": (
        Anchor("ProxyAnchor", "BN-Inception, 512-d", "recall@1", 86.1, _HYP_VIT),
        Anchor("ProxyAnchor", "ResNet-50, 512-d", "recall@1", 87.7, _PA_REPO),
    ),
    "sop": (Anchor("ProxyAnchor", "BN-Inception, 512-d", "recall@1", 79.1, _HYP_VIT),),
    "inshop": (
        Anchor(
            "triplet (OML zoo)",
            "ViT-S/16, DINO initialization, 384-d",
            "recall@1",
            92.1,
            _OML_ZOO,
        ),
    ),
    "imagenet100": (
        Anchor(
            "SimCLR",
            "ResNet-18, 400 epochs, linear top-1 (online probe)",
            "linear_top1",
            77.6,
            "solo-learn results table (vturrisi/solo-learn README)",
        ),
        Anchor(
            "SimCLR",
            "ResNet-18, 200 epochs, k-NN k=20",
            "knn_top1@20",
            46.9,
            "lightly ImageNet-100 benchmark table (lightly-ai/lightly docs)",
        ),
    ),
}
"""table name -> anchors (none for a method the notes have no number for, e.g. N-pair)."""

MLRC_NOTE = (
    "A Metric Learning Reality Check (Musgrave et al., ECCV 2020) reports ProxyAnchor and "
    "N-pair under its own protocol (BN-Inception, 4 class-disjoint folds, 128/512-d; MAP@R, "
    "P@1, R-precision); the project's notes hold none of its numbers, so none are quoted. "
    "Our MAP@R column is its primary metric."
)
