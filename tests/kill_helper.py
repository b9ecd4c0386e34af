"""Run `cmteb` in this process and SIGKILL it at a given point of the run (crash tests).

Usage: python tests/kill_helper.py POINT cmteb-args...

POINT is `batches:N` (after N encoded batches) or `writes:N` (at the N-th atomic write, its temp file written
and not yet renamed into place); N 0: never. Either lands inside the run whatever the machine's speed.
`interrupt-writes:N` sends SIGINT to the whole process group instead, as a terminal's Ctrl-C does (the helper
is then started in a session of its own).
"""

from __future__ import annotations

import os
import signal
import sys

from cmteb import io
from cmteb.cli import main
from cmteb.models import encoder

STOP = {"how": "kill"}


def _kill() -> None:
    if STOP["how"] == "interrupt":
        STOP["how"] = "done"  # once, as one Ctrl-C
        os.killpg(os.getpgid(0), signal.SIGINT)
    elif STOP["how"] == "kill":
        os.kill(os.getpid(), signal.SIGKILL)


def kill_after_batches(limit: int) -> None:
    real_encode = encoder.BGEEncoder.encode
    seen = [0]

    def encode(self, texts, **kwargs):
        user_on_batch = kwargs.pop("on_batch", None)

        def on_batch(n):
            if user_on_batch is not None:
                user_on_batch(n)
            seen[0] += 1
            if limit and seen[0] >= limit:
                _kill()

        return real_encode(self, texts, on_batch=on_batch, **kwargs)

    encoder.BGEEncoder.encode = encode


def kill_at_write(limit: int) -> None:
    real_replace = io.os.replace
    seen = [0]

    def replace(source, target):
        seen[0] += 1
        if limit and seen[0] >= limit:
            _kill()
        real_replace(source, target)

    io.os = _Proxy(replace)


class _Proxy:
    """`os` as cmteb.io sees it, with `replace` swapped."""

    def __init__(self, replace) -> None:
        self.replace = replace

    def __getattr__(self, name):
        return getattr(os, name)


if __name__ == "__main__":
    kind, count = sys.argv[1].split(":")
    if kind.startswith("interrupt-"):
        STOP["how"], kind = "interrupt", kind.removeprefix("interrupt-")
    {"batches": kill_after_batches, "writes": kill_at_write}[kind](int(count))
    sys.exit(main(sys.argv[2:]))
