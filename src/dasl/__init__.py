"""dasl: robust similarity learning with difference alignment regularization (DAR)."""

__version__ = "0.1.0"
