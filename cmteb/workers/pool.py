"""A model core's outputs computed by a pool of workers instead of in this process.

The core tokenises; the pool cuts the length-sorted inputs into shards of whole batches, the
workers run them, and the outputs come back in input order with the work counted in the core's
own counters, so the cache, the results and the run record do not change with the pool.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from cmteb.models.batching import BatchStats
from cmteb.workers.dispatch import Backend, ShardLog, run_shards
from cmteb.workers.options import WorkerOptions
from cmteb.workers.replica import ReplicaSpec
from cmteb.workers.shards import plan_shards


class WorkerPool:
    """Workers that each hold a replica of one core (see the module docstring)."""

    def __init__(self, backend: Backend, batch_size: int, max_tokens: int | None) -> None:
        self.backend = backend
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.log = ShardLog()

    @property
    def workers(self) -> list[str]:
        """Where the live workers run."""
        return self.backend.live()

    def run(
        self,
        encoded: dict[str, list[Any]],
        out: np.ndarray,
        stats: BatchStats,
        on_batch: Callable[[int], None] | None = None,
        log: ShardLog | None = None,
    ) -> np.ndarray:
        """Fill `out` with the outputs of every input of `encoded`, counting the work in `stats` and where its
        shards ran in `log` (default: the pool's own log)."""
        started = time.perf_counter()
        shards = plan_shards(encoded, self.batch_size, self.max_tokens, len(self.workers))

        def count(shard: Any, work: dict[str, float]) -> None:
            stats.tokens += int(work["tokens"])
            stats.padded_tokens += int(work["padded_tokens"])
            stats.batches += int(work["batches"])
            if on_batch is not None:
                on_batch(len(shard.indices))

        run_shards(self.backend, shards, out, log or self.log, count)
        stats.seconds += time.perf_counter() - started
        return out

    def close(self) -> None:
        """Stop the workers."""
        self.backend.close()


def start_pool(options: WorkerOptions, spec: ReplicaSpec) -> WorkerPool:
    """Start the workers `options` ask for, each loading the core `spec` names."""
    if options.ray:
        from cmteb.workers.ray_backend import RayBackend

        backend: Any = RayBackend(spec, options.ray_address, options.count)
    else:
        from cmteb.workers.processes import ProcessBackend

        backend = ProcessBackend(spec, list(options.devices))
    return WorkerPool(backend, spec.options.batch_size, spec.options.batch_tokens)
