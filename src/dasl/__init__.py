"""dasl: robust similarity learning with difference alignment regularization (DAR).

>>> import torch, dasl
>>> reg = dasl.DifferenceAlignmentRegularizer(measure="l2", estimator="exact")
>>> z = torch.nn.functional.normalize(torch.randn(8, 4), dim=1)
>>> float(reg(z, torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]))) >= 0
True
"""

from dasl.dar import (
    DASLLoss,
    DifferenceAlignmentRegularizer,
    TwoViewDASLLoss,
    ctv_norm,
    dasl_np,
    dasl_pa,
    difference_alignment,
)

__version__ = "0.1.0"

__all__ = [
    "DASLLoss",
    "DifferenceAlignmentRegularizer",
    "TwoViewDASLLoss",
    "__version__",
    "ctv_norm",
    "dasl_np",
    "dasl_pa",
    "difference_alignment",
]
