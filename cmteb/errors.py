"""User-facing errors: a one-line message saying what is wrong and how to fix it."""

from __future__ import annotations

import sys


class CmtebError(Exception):
    """A problem with the user's input or environment; the CLI prints it and exits with status 2."""


def warn(message: str) -> None:
    """A one-line warning on stderr (the progress display keeps to its own lines)."""
    print(f"cmteb: warning: {message}", file=sys.stderr)
