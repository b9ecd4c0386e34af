"""The `cmteb` command line: `parsers` reads the arguments, `commands` calls the modules that do the work, and
`main` turns a user error into one line and an exit status."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Sequence
from typing import Any

from cmteb.cli.commands import COMMANDS
from cmteb.cli.parsers import build_parser
from cmteb.errors import CmtebError


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run a command; user errors print one line and exit with status 2."""
    args = build_parser().parse_args(argv)
    stdout, sys.stdout = sys.stdout, ClosedPipeSafe(sys.stdout)
    try:
        status = COMMANDS[args.command](args)
        sys.stdout.flush()
        return status
    except CmtebError as exc:
        if getattr(args, "debug", False):
            raise
        print(f"cmteb: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cmteb: interrupted; finished tasks are saved, rerun the same command to resume", file=sys.stderr)
        return 130
    finally:
        sys.stdout = stdout


class ClosedPipeSafe:
    """Standard output for which a reader that went away (`cmteb compare ... | head`) means silence.

    The command runs on and exits with its own status (compare's verdict included); what it prints
    after the pipe closed goes nowhere, as with Unix tools. Rich would exit 1 instead, and `print`
    would end in a BrokenPipeError traceback.
    """

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._closed = False

    def write(self, text: str) -> int:
        """Write `text`, or drop it once the reader has gone."""
        if not self._closed:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._close()
        return len(text)

    def flush(self) -> None:
        """Flush, unless the reader has gone."""
        if not self._closed:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._close()

    def _close(self) -> None:
        self._closed = True
        # The interpreter's last flush of the real stdout then goes nowhere too (a test's capture has no fd).
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), self._stream.fileno())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


__all__ = ["ClosedPipeSafe", "build_parser", "main"]
