"""User-facing errors: a one-line message saying what is wrong and how to fix it."""

from __future__ import annotations


class CmtebError(Exception):
    """A problem with the user's input or environment; the CLI prints it and exits with status 2."""
