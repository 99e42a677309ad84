"""dasl: robust similarity learning with difference alignment regularization (DAR).

>>> import torch, dasl
>>> reg = dasl.DifferenceAlignmentRegularizer(measure="l2", estimator="exact")
>>> z = torch.nn.functional.normalize(torch.randn(8, 4), dim=1)
>>> float(reg(z, torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]))) >= 0
True
"""

from typing import Any

# The exceptions import nothing heavy: re-exported eagerly, `dasl --help` stays torch-free.
from dasl.errors import (
    CheckpointError,
    ConfigError,
    DaslError,
    DataError,
    DependencyError,
    Interrupted,
    MissingDataError,
    UnreadableDataError,
)

_FROM_DAR = (
    "DASLLoss",
    "DifferenceAlignmentRegularizer",
    "TwoViewDASLLoss",
    "ctv_norm",
    "dasl_np",
    "dasl_pa",
    "difference_alignment",
)


def __getattr__(name: str) -> Any:
    # Imported on first use (PEP 562): `dasl --help` and `dasl --version` need no torch (#16).
    if name in _FROM_DAR:
        import dasl.dar

        return getattr(dasl.dar, name)
    raise AttributeError(f"module 'dasl' has no attribute {name!r}")


__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DASLLoss",
    "DaslError",
    "DataError",
    "DependencyError",
    "DifferenceAlignmentRegularizer",
    "Interrupted",
    "MissingDataError",
    "TwoViewDASLLoss",
    "UnreadableDataError",
    "__version__",
    "ctv_norm",
    "dasl_np",
    "dasl_pa",
    "difference_alignment",
]
