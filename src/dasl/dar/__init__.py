"""Difference alignment regularization (DAR): CTV kernels, the regularizer, DASL losses."""

from dasl.dar.ctv import ctv_norm
from dasl.dar.loss import DASLLoss, TwoViewDASLLoss, dasl_np, dasl_pa
from dasl.dar.regularizer import DifferenceAlignmentRegularizer, difference_alignment

__all__ = [
    "DASLLoss",
    "DifferenceAlignmentRegularizer",
    "TwoViewDASLLoss",
    "ctv_norm",
    "dasl_np",
    "dasl_pa",
    "difference_alignment",
]
