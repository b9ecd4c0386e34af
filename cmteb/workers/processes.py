"""One worker process per device of this machine, each with its own model replica.

Why processes and not `torch.nn.DataParallel`: DataParallel drives every GPU from one Python
thread, scatters each batch and gathers it on the first GPU (PyTorch advises against it); a
process per device tokenises, pads and runs its shards independently, and a CPU worker gets its
own share of the cores. Started with `spawn`, as CUDA requires.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import threading
import time
from multiprocessing import connection
from typing import Any

from cmteb.errors import CmtebError
from cmteb.workers.dispatch import Event, as_event
from cmteb.workers.replica import ReplicaSpec, load_replica, run_shard, worker_name
from cmteb.workers.shards import Shard

#: How long a worker may take to load its replica before the run gives up on the pool.
LOAD_TIMEOUT_S = 600.0


def _end_with_parent() -> None:
    """Make this worker end with the process that started it, and leave Ctrl-C to that process.

    Ctrl-C reaches every process of the terminal's foreground group: the parent stops the pool, so a worker
    ignores it rather than print its own traceback. A parent killed outright (kill -9) may leave a worker in
    the middle of a shard: a thread checks the parent every half second and ends the worker once it is gone.
    (Not Linux's PR_SET_PDEATHSIG: it fires when the parent's starting thread ends, not the parent.)
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def _serve(spec: ReplicaSpec, threads: int | None, channel: Any) -> None:
    """A worker process: load the replica, say where it runs, then run shards until told to stop. A parent
    gone (its pipe closed) ends the worker without a word."""
    _end_with_parent()
    try:
        try:
            core = load_replica(spec, threads)
        except Exception as exc:  # the parent loaded the same files: this is the device's own trouble
            channel.send(("error", f"a worker could not load the model on {spec.options.device}: {exc}"))
            return
        channel.send(("ready", worker_name(spec.options.device)))
        while (item := channel.recv()) is not None:
            try:
                channel.send(("done", run_shard(core, item)))
            except CmtebError as exc:
                channel.send(("error", str(exc)))
    except (EOFError, OSError):  # the parent is gone: nobody to answer
        os._exit(0)


class ProcessBackend:
    """Worker processes on `devices` (one each; `cpu` may repeat, each CPU worker then takes its share
    of the cores). Each worker has its own pipe: a worker killed mid-message breaks only its own."""

    def __init__(self, spec: ReplicaSpec, devices: list[str]) -> None:
        context = mp.get_context("spawn")
        cpu_workers = sum(d == "cpu" for d in devices)
        threads = max(1, (os.cpu_count() or 1) // cpu_workers) if cpu_workers else None
        self.channels, self.processes = [], []
        for device in devices:
            ours, theirs = context.Pipe()
            process = context.Process(
                target=_serve, args=(spec.on(device), threads if device == "cpu" else None, theirs)
            )
            process.daemon = True
            process.start()
            theirs.close()
            self.channels.append(ours)
            self.processes.append(process)
        self.names = [self._ready(k) for k in range(len(devices))]
        self.alive = set(self.names)
        self.busy: dict[str, int] = {}

    def _ready(self, slot: int) -> str:
        channel = self.channels[slot]
        if not channel.poll(LOAD_TIMEOUT_S):
            self.close()
            raise CmtebError("the worker processes did not load the model in time: see the messages above")
        try:
            status, payload = channel.recv()
        except EOFError as exc:
            self.close()
            raise CmtebError(
                f"a worker process ended while loading the model (exit code {self.processes[slot].exitcode})"
            ) from exc
        if status == "error":
            self.close()
            raise CmtebError(payload)
        return payload

    def live(self) -> list[str]:
        """Names of the workers still alive."""
        return [n for n in self.names if n in self.alive]

    def start(self, worker: str, shard: Shard) -> None:
        """Hand `shard` to the idle `worker`."""
        slot = self.names.index(worker)
        self.busy[worker] = slot
        with contextlib.suppress(OSError):  # it died between shards: found lost at the next wait
            self.channels[slot].send(shard.encoded)

    def wait(self, timeout: float) -> list[Event]:
        """Replies that came within `timeout`, and busy workers whose process ended."""
        watched = {self.channels[slot]: worker for worker, slot in self.busy.items()}
        watched |= {self.processes[slot].sentinel: worker for worker, slot in self.busy.items()}
        events = []
        for ready in connection.wait(list(watched), timeout=timeout):
            worker = watched[ready]
            if worker not in self.busy:
                continue  # its reply and its end came together
            slot = self.busy.pop(worker)
            try:
                events.append(as_event(worker, self.channels[slot].recv()))
            except (EOFError, OSError):
                self.processes[slot].join(timeout=5)
                self.alive.discard(worker)
                code = self.processes[slot].exitcode
                events.append(Event(worker, "lost", reason=f"its process ended with exit code {code}"))
        return events

    def close(self) -> None:
        """Stop every worker process: an idle one is told to, a busy one (the run stopped mid-task: Ctrl-C, an
        error) is ended at once rather than waited for."""
        busy = set(self.busy.values())
        for slot, (channel, process) in enumerate(zip(self.channels, self.processes, strict=True)):
            if process.is_alive() and slot in busy:
                process.terminate()
            elif process.is_alive():
                with contextlib.suppress(OSError):
                    channel.send(None)
        for process in self.processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
