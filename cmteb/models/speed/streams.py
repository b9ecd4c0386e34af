"""Forward passes on several CPU cores at once: one pass per core, all sharing one copy of the weights.

Why not one pass spread over every core (torch's intra-op threads): each operator then waits for its
slowest core, and the Python between operators, the small element-wise operators and the batch's
padding run on one core while the others wait. One pass per core, each on a single intra-op thread,
keeps every core busy. On 2 cores, m3e-small, the whole T2Retrieval task of `make bench`'s mirror (20,477
texts of 52 tokens on average, passes of 1,024 tokens) spent 259.4 s in the model against 296.2 s one pass
at a time (0.88), the same embeddings; random token ids in passes of 1,024 tokens: 0.76–0.90 of the time for
texts of 32–256 tokens, even at 512 (`make bench-levers` times it as a lever).

Threads rather than processes: torch releases the GIL inside its operators, so the threads share the
loaded model, where worker processes (`--devices cpu,cpu`) each load a copy and pay their own start.

Every pass runs on a stream, a call's lone pass too: float results can depend on the thread count, and a
batch-invariant run (one text per pass) promises a text's embedding whatever else is encoded.

A torch thread count is a per-thread setting, but torch keeps the last one set as the count new threads
start with: each stream sets its own to one, and the caller's count is set again once they are done.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import torch

Forward = Callable[[Any, dict[str, torch.Tensor]], None]


def default_streams(device: str, asked: int | None) -> int:
    """Passes run at once: one on a GPU; on a CPU, `asked`, else one per core torch computes on."""
    if not device.startswith("cpu"):
        return 1
    return asked or torch.get_num_threads()


class _Streams:
    """`count` threads of one torch thread each, running `forward` on submitted batches; at most two
    batches per thread wait, so padded batches are not all made (and held) ahead of the passes."""

    def __init__(self, forward: Forward, count: int) -> None:
        self._forward = forward
        self._threads_before = torch.get_num_threads()
        self._pool = ThreadPoolExecutor(max_workers=count, thread_name_prefix="cmteb-stream", initializer=_one_thread)
        self._room = threading.BoundedSemaphore(2 * count)
        self.error: BaseException | None = None  # the first failed pass's error

    def submit(self, idx: Any, batch: dict[str, torch.Tensor]) -> None:
        """Queue one batch's pass (waiting while the queue is full); stop at once when a pass has failed."""
        self._room.acquire()
        if self.error is not None:
            self._room.release()
            raise _PassFailed  # not the pass's own error: the caller would take it for this batch's
        future = self._pool.submit(self._run, idx, batch)
        future.add_done_callback(self._done)

    def _run(self, idx: Any, batch: dict[str, torch.Tensor]) -> None:
        with torch.inference_mode():  # a per-thread mode: the caller's does not reach this thread
            self._forward(idx, batch)

    def _done(self, future: Future[None]) -> None:
        if not future.cancelled() and future.exception() is not None and self.error is None:
            self.error = future.exception()
        self._room.release()

    def close(self, *, cancel: bool) -> None:
        """Wait for the passes (dropping the queued ones when `cancel`), then raise the first pass's error."""
        self._pool.shutdown(wait=True, cancel_futures=cancel)
        torch.set_num_threads(self._threads_before)  # what threads started later get
        if not cancel and self.error is not None:
            raise self.error


class _PassFailed(Exception):
    """A queued pass failed: `parallel_passes` raises its error once the submitting loop has stopped."""


def _one_thread() -> None:
    torch.set_num_threads(1)


@contextmanager
def parallel_passes(forward: Forward, streams: int) -> Iterator[Forward]:
    """`forward`, run on `streams` threads at once while the block runs; every pass is done when it ends.

    With one stream the passes run in the caller's thread, as they come."""
    if streams <= 1:
        yield forward
        return
    runner = _Streams(forward, streams)
    try:
        yield runner.submit
    except _PassFailed:
        runner.close(cancel=True)
        raise runner.error from None
    except BaseException:
        runner.close(cancel=True)
        raise
    runner.close(cancel=False)
