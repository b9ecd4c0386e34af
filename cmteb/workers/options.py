"""Where a run's model work goes: this process, one process per listed device, or Ray actors.

Kept free of torch and Ray, so a run's settings resolve (and bad ones are refused) at once.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass

from cmteb.errors import CmtebError
from cmteb.models.devices import checked_form

#: `--ray` given without an address: start a Ray instance on this machine for the run.
LOCAL_RAY = "local"


@dataclass(frozen=True)
class WorkerOptions:
    """`--devices`, `--ray [ADDRESS]` and `--workers`, resolved."""

    devices: tuple[str, ...] = ()  # one worker process each; none: every visible GPU when there are several
    ray: bool = False
    ray_address: str | None = None  # None: a local Ray instance
    count: int | None = None  # Ray actors (default: one per GPU of the cluster, else one per node)

    @property
    def pooled(self) -> bool:
        """Whether the model work leaves this process: Ray, or any listed device (`--devices cuda:1` alone is
        one worker on that GPU, while this process tokenises the next shard)."""
        return self.ray or bool(self.devices)

    @property
    def device_kind(self) -> str | None:
        """cuda or cpu for the listed devices, None when none are listed."""
        if not self.devices:
            return None
        return "cuda" if any(d.startswith("cuda") for d in self.devices) else "cpu"


def device_kind(device: str | None) -> str | None:
    """cpu or cuda for a device name (checked by its form alone: with Ray, the GPUs are the cluster's)."""
    if device is None:
        return None
    return checked_form(device).split(":")[0]


def resolve_workers(devices: str | None, ray: str | None, count: int | None, device: str | None) -> WorkerOptions:
    """The worker options from the command line's strings; refuses contradictions in one line."""
    if count is not None and count < 1:
        raise CmtebError(f"--workers must be positive, got {count}")
    if ray is not None:
        if devices:
            raise CmtebError(
                "--devices lists this machine's devices, while with --ray Ray places one worker per GPU of the "
                "cluster: pass one of them (--workers N sets how many Ray workers)"
            )
        if importlib.util.find_spec("ray") is None:
            raise CmtebError(
                "--ray needs Ray, which is not installed: pip install -e '.[ray]' in cmteb's checkout "
                "(or pip install 'ray>=2.40')"
            )
        from cmteb.workers.ray_backend import check_reachable

        address = None if ray == LOCAL_RAY else ray
        check_reachable(address)  # before any data loads: a cluster that does not answer is said in seconds
        return WorkerOptions(ray=True, ray_address=address, count=count)
    if count is not None:
        raise CmtebError("--workers sets the number of Ray workers: add --ray, or list devices with --devices")
    if not devices:
        return WorkerOptions()
    if device is not None:
        raise CmtebError("pass either --device (one device) or --devices (one worker per listed device), not both")
    listed = tuple(d.strip() for d in devices.split(",") if d.strip())
    if not listed:
        raise CmtebError(f"--devices {devices!r} lists no device: list cpu or cuda:N, e.g. cuda:0,cuda:1")
    for name in listed:
        if not re.fullmatch(r"cpu|cuda:\d+", name):
            raise CmtebError(f"unknown device {name!r} in --devices: list cpu or cuda:N, e.g. cuda:0,cuda:1")
    if len({d.startswith("cuda") for d in listed}) > 1:
        raise CmtebError("--devices mixes GPUs and CPUs, whose float results differ: list one kind")
    if len(set(listed)) < len(listed) and listed[0] != "cpu":
        raise CmtebError(f"--devices names a GPU twice ({devices}): list each once")
    return WorkerOptions(devices=listed)
