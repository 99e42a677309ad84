"""Command-line interface (``dasl``)."""
