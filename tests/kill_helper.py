"""Run `cmteb` in this process and SIGKILL it after a number of encoded batches (crash tests).

Usage: python tests/kill_helper.py N_BATCHES cmteb-args...   (N_BATCHES 0: never)
"""

from __future__ import annotations

import os
import signal
import sys

from cmteb.cli import main
from cmteb.models import encoder

if __name__ == "__main__":
    limit = int(sys.argv[1])
    real_encode = encoder.BGEEncoder.encode
    seen = [0]

    def encode(self, texts, **kwargs):
        user_on_batch = kwargs.pop("on_batch", None)

        def on_batch(n):
            if user_on_batch is not None:
                user_on_batch(n)
            seen[0] += 1
            if limit and seen[0] >= limit:
                os.kill(os.getpid(), signal.SIGKILL)

        return real_encode(self, texts, on_batch=on_batch, **kwargs)

    encoder.BGEEncoder.encode = encode
    sys.exit(main(sys.argv[2:]))
