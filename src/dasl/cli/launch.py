"""Steps every training command (``train``, ``pretrain``, ``tune``) takes the same way."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Mapping
from typing import Any, TypeVar

from dasl.config import apply_overrides, parse_override

C = TypeVar("C")


def with_run_name(cfg: C, args: argparse.Namespace) -> C:
    """``--name`` and ``--out-dir`` (where given) replace the config's ``name`` / ``out_dir``."""
    extra = {k: v for k, v in (("name", args.name), ("out_dir", args.out_dir)) if v is not None}
    return dataclasses.replace(cfg, **extra) if extra else cfg  # type: ignore[type-var]


def demo_fallback(cfg: C, overrides: list[str], notice: str, fallback: Mapping[str, Any]) -> C:
    """``cfg`` moved to the ``fallback`` settings (a demo's dataset is missing here), with
    ``notice`` on stderr; settings the user gave on the command line are kept."""
    print(f"notice: {notice}", file=sys.stderr)
    user_keys = {parse_override(o)[0] for o in overrides}
    kept = {k: v for k, v in fallback.items() if k not in user_keys}
    return apply_overrides(cfg, kept)  # type: ignore[arg-type,return-value]
