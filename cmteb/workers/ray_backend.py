"""Workers as Ray actors, across the machines of a Ray cluster: one per GPU, or on a CPU run one per
node, on its cores (Ray would otherwise give each actor one CPU, and so one torch thread). Each actor
loads its model replica once and runs shards until the run ends; an actor that dies (killed, out of
memory, its node lost) has its shard redone by another.

The model must be readable at the same path on every node (the Hugging Face cache of a hub id,
or a shared folder), and cmteb installed there.

Ray starts its workers at niceness 15 (its `worker_niceness`), below every ordinary process: on a
machine where anything else runs (this run's own tokenising and evaluation, another job) the actors
get the CPU last, and an actor waiting for a core leaves its GPU idle. A local Ray started here runs
them at 0; the actors of a cluster started without `RAY_worker_niceness=0` are named in a warning.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any

from cmteb.errors import CmtebError, warn
from cmteb.workers.dispatch import Event, as_event
from cmteb.workers.replica import ReplicaSpec, load_replica, run_shard, worker_name
from cmteb.workers.shards import Shard


class Replica:
    """The actor: a model replica on the device Ray gave it."""

    def __init__(self, spec: ReplicaSpec, device: str) -> None:
        self.core = load_replica(spec.on(device))
        self.name = f"ray {worker_name(device)}"

    def where(self) -> tuple[str, int]:
        """Where this actor runs, and its process's niceness."""
        return self.name, os.nice(0)

    def run(self, encoded: dict[str, list[Any]]) -> tuple[str, Any]:
        """One shard's reply, as a worker process sends it."""
        try:
            return ("done", run_shard(self.core, encoded))
        except CmtebError as exc:
            return ("error", str(exc))


#: How long the head's address may take to accept a connection before the run gives up on it.
CONNECT_TIMEOUT_S = 10.0


def check_reachable(address: str | None) -> None:
    """Fail in one line when nothing answers at `address` (HOST:PORT or ray://HOST:PORT): `ray.init` would retry
    for minutes, printing only its connection warnings. `auto` and a new local instance are Ray's to find."""
    if address in (None, "auto", "local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise CmtebError(f"--ray {address!r} is no Ray address: pass HOST:PORT (the head's GCS port, 6379 by default)")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise CmtebError(
            f"nothing answers at the Ray address {address} ({exc.strerror or exc}): start the cluster with "
            "`ray start --head`, or pass the head's address, or --ray without an address for a local Ray"
        ) from None


def connect(address: str | None) -> Any:
    """`ray`, connected to the cluster at `address` (`auto`: the one `ray start` made here) or to a new
    local instance when `address` is None."""
    import ray

    if not ray.is_initialized():
        check_reachable(address)
        # A cluster's settings are its own (`ray start`); a local instance's workers run at the driver's niceness.
        system_config = {"_system_config": {"worker_niceness": 0}} if address is None else {}
        try:
            ray.init(
                address=address, include_dashboard=False, log_to_driver=False, configure_logging=False, **system_config
            )
        except ConnectionError as exc:
            raise CmtebError(
                f"cannot reach the Ray cluster at {address}: start it with `ray start --head` (or pass the head's "
                f"address), or run --ray without an address for a local Ray ({exc})"
            ) from exc
    return ray


def niceness_warning(levels: list[int]) -> str | None:
    """The warning for actors that run below ordinary processes (see the module docstring), if any do."""
    if max(levels, default=0) <= 0:
        return None
    return (
        f"the Ray workers run at niceness {max(levels)} (Ray's default), so other work on their machines, this run's "
        "tokenising and evaluation included, takes the CPU first and the workers wait: start the cluster with "
        "`RAY_worker_niceness=0 ray start ...`"
    )


@dataclass(frozen=True)
class ActorPlan:
    """How many actors a run starts and what each asks Ray for."""

    count: int
    gpus: int  # each: one on a GPU run
    cpus: int  # each: none on a GPU run (the GPU does the work); on a CPU run, the cores its passes run on

    def options(self) -> dict[str, Any]:
        """The actor options: Ray sets a CPU actor's OMP_NUM_THREADS, and so torch's threads, to `cpus`."""
        if self.gpus:
            return {"num_gpus": self.gpus, "num_cpus": 0}
        return {"num_gpus": 0, "num_cpus": self.cpus, "scheduling_strategy": "SPREAD"}


def plan_actors(gpus: int, node_cpus: list[int], asked: int | None, on_gpu: bool) -> ActorPlan:
    """`asked` actors, else one per GPU of the cluster (GPU runs) or one per node (CPU runs; `node_cpus`: the
    CPUs of each live node). A CPU actor takes as many cores as still lets every actor find a node."""
    if on_gpu:
        if not gpus:
            raise CmtebError("the Ray cluster has no GPU: run with --device cpu, or add GPU nodes with `ray start`")
        if asked is not None and asked > gpus:
            raise CmtebError(
                f"--workers {asked} asks for more GPU workers than the Ray cluster's {gpus} GPUs: pass "
                f"--workers {gpus} or fewer (one GPU each), or add GPU nodes"
            )
        return ActorPlan(count=asked or gpus, gpus=1, cpus=0)
    if gpus:
        warn(f"the Ray cluster's {gpus} GPUs stay unused: this run's device is cpu (pass --device cuda to use them)")
    count = asked or sum(1 for cpus in node_cpus if cpus)
    if not count:
        raise CmtebError("the Ray cluster has no CPU to run on: add nodes with `ray start`")
    if count > sum(node_cpus):
        raise CmtebError(
            f"--workers {count} asks for more CPU workers than the Ray cluster's {sum(node_cpus)} CPUs: pass --workers "
            f"{sum(node_cpus)} or fewer, or add nodes"
        )
    cores = max(c for c in range(1, max(node_cpus) + 1) if sum(n // c for n in node_cpus) >= count)
    return ActorPlan(count=count, gpus=0, cpus=cores)


class RayBackend:
    """Ray actors as workers (see the module docstring)."""

    def __init__(self, spec: ReplicaSpec, address: str | None, count: int | None) -> None:
        self.ray = connect(address)
        on_gpu = spec.options.device == "cuda"
        nodes = [node["Resources"] for node in self.ray.nodes() if node.get("Alive")]
        gpus = int(self.ray.cluster_resources().get("GPU", 0))
        plan = plan_actors(gpus, [int(node.get("CPU", 0)) for node in nodes], count, on_gpu)
        actor = self.ray.remote(**plan.options())(Replica)
        device = "cuda:0" if on_gpu else "cpu"  # Ray shows each actor only its own GPU
        self.actors = [actor.remote(spec, device) for _ in range(plan.count)]
        try:
            names, levels = zip(*self.ray.get([a.where.remote() for a in self.actors]), strict=True)
        except self.ray.exceptions.RayError as exc:
            self.close()
            raise CmtebError(f"the Ray workers could not load the model: {str(exc).splitlines()[-1]}") from exc
        if message := niceness_warning(list(levels)):
            warn(message)
        self.names = [f"{name} #{k}" for k, name in enumerate(names)]
        self.by_name = dict(zip(self.names, self.actors, strict=True))
        self.pending: dict[Any, str] = {}

    def live(self) -> list[str]:
        """Names of the actors not known to be lost."""
        return list(self.by_name)

    def start(self, worker: str, shard: Shard) -> None:
        """Hand `shard` to the idle actor `worker`."""
        self.pending[self.by_name[worker].run.remote(shard.encoded)] = worker

    def wait(self, timeout: float) -> list[Event]:
        """Replies of the shards that ended within `timeout`."""
        ready, _ = self.ray.wait(list(self.pending), num_returns=1, timeout=timeout)
        events = []
        for ref in ready:
            worker = self.pending.pop(ref)
            try:
                events.append(as_event(worker, self.ray.get(ref)))
            except (self.ray.exceptions.RayActorError, self.ray.exceptions.WorkerCrashedError) as exc:
                self.by_name.pop(worker, None)
                events.append(Event(worker, "lost", reason=type(exc).__name__))
            except self.ray.exceptions.RayTaskError as exc:  # the replica's own failure: redoing it would fail again
                events.append(Event(worker, "error", reason=f"a Ray worker failed: {str(exc).splitlines()[-1]}"))
        return events

    def kill(self, worker: str) -> None:
        """End one actor at once, as a crash would (used to prove the run survives it)."""
        self.ray.kill(self.by_name[worker])

    def close(self) -> None:
        """End every actor (the cluster, or the local Ray instance, stays up for the next run)."""
        for actor in self.actors:
            self.ray.kill(actor)
