"""``dasl reproduce``: the poster's tables, their rows, its numbers, and the report beside ours.

Framework-free (no torch or Lightning): the CLI (:mod:`dasl.cli.reproduce`) runs the rows.
"""
