"""Shards to workers and outputs back in input order, whatever the backend (processes or Ray actors).

Workers take the next shard as soon as they are free, so fast devices do more. A worker lost
mid-shard (killed, out of memory, its machine gone) is dropped and its shard goes back to the
front of the queue for another; the run goes on while one worker lives, and says what was redone.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from cmteb.errors import CmtebError, warn
from cmteb.workers.shards import Shard


@dataclass(frozen=True)
class Event:
    """What a backend reports of one shard: done (`outputs`, `work`), `lost` with a reason, or an `error`."""

    worker: str
    status: str  # "done", "lost" or "error"
    outputs: np.ndarray | None = None
    work: dict[str, float] = field(default_factory=dict)
    reason: str = ""


class Backend(Protocol):
    """Live workers that each run one shard at a time."""

    def live(self) -> list[str]:
        """Names of the workers still alive."""
        ...

    def start(self, worker: str, shard: Shard) -> None:
        """Hand `shard` to the idle `worker`."""
        ...

    def wait(self, timeout: float) -> list[Event]:
        """Events of shards that ended within `timeout` seconds (possibly none)."""
        ...

    def close(self) -> None:
        """Stop every worker."""
        ...


@dataclass
class ShardLog:
    """Where each shard ran and what was redone, for the run record (read and cleared once per task)."""

    shards: list[str] = field(default_factory=list)  # "<worker>: <inputs>"
    retried: list[str] = field(default_factory=list)

    def extend(self, other: ShardLog) -> None:
        """Add `other`'s entries (work done elsewhere for the same task)."""
        self.shards += other.shards
        self.retried += other.retried

    def take(self) -> dict[str, list[str]]:
        """This log's entries since the last take."""
        taken = {"shards": self.shards, "retried": self.retried}
        self.shards, self.retried = [], []
        return taken


def run_shards(
    backend: Backend,
    shards: list[Shard],
    out: np.ndarray,
    log: ShardLog,
    on_done: Callable[[Shard, dict[str, float]], None],
) -> np.ndarray:
    """Run every shard on the backend's workers, writing each shard's outputs into `out` at its indices."""
    queue, busy = deque(shards), {}
    while queue or busy:
        for worker in backend.live():
            if queue and worker not in busy:
                busy[worker] = queue.popleft()
                backend.start(worker, busy[worker])
        if not busy:
            raise CmtebError(
                "every worker was lost: see the messages above (out of memory? killed?), then rerun the same "
                "command to resume"
            )
        for event in backend.wait(timeout=1.0):
            shard = busy.pop(event.worker)
            if event.status == "error":
                raise CmtebError(event.reason)
            if event.status == "lost":
                what = f"worker {event.worker} was lost ({event.reason}): its shard of {len(shard.indices)} inputs"
                warn(f"{what} is redone on another worker")
                log.retried.append(f"{what} redone")
                queue.appendleft(shard)
                continue
            out[shard.indices] = event.outputs
            log.shards.append(f"{event.worker}: {len(shard.indices)}")
            on_done(shard, event.work)
    return out


def as_event(worker: str, reply: Any) -> Event:
    """A worker's reply `(status, payload)` as an event."""
    status, payload = reply
    if status == "done":
        outputs, work = payload
        return Event(worker, "done", outputs=outputs, work=work)
    return Event(worker, status, reason=str(payload))
