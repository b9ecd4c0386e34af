"""Protocol profiles (`tasks/protocols.yaml`): the task list, data, splits, metrics and averaging
that a "C-MTEB score" was produced under. Every result records its protocol; tables, model
cards and comparisons keep protocols apart."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import yaml

from cmteb.assets import TASKS_DIR
from cmteb.errors import CmtebError
from cmteb.registry import TaskSpec, load_registry

PROTOCOLS_FILE = TASKS_DIR / "protocols.yaml"
DEFAULT_PROTOCOL = "mteb-cmn-v1"
OVERRIDABLE = ("repo", "revision", "splits", "run_as", "variant", "qrels_repo", "qrels_revision")


@dataclass(frozen=True)
class Protocol:
    """One profile: its tasks (registry entries with the profile's changes) and its rules."""

    name: str
    description: str
    reference: str
    runnable: bool
    splits_combine: str
    instruction: str
    averages: str
    tasks: tuple[TaskSpec, ...]
    rounding: str | None = None

    def get(self, name: str) -> TaskSpec:
        """A task of this protocol by name."""
        for spec in self.tasks:
            if spec.name == name:
                return spec
        raise CmtebError(f"protocol {self.name} has no task {name!r}: `cmteb tasks --protocol {self.name}` lists them")


@lru_cache(maxsize=4)
def load_protocols(path: Path = PROTOCOLS_FILE) -> dict[str, Protocol]:
    """All profiles, resolved against the registry."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    base = [t for t in load_registry().tasks if t.in_mteb]
    protocols = {}
    for name, entry in data["protocols"].items():
        overrides = entry.get("tasks") or {}
        unknown = set(overrides) - {t.name for t in base}
        if unknown:
            raise CmtebError(f"{path}: protocol {name} changes unknown tasks {sorted(unknown)}")
        tasks = []
        for spec in base:
            change = dict(overrides.get(spec.name, {}))
            if "splits" in change:
                change["splits"] = tuple(change["splits"])
            metric = (entry.get("metrics") or {}).get(spec.type, spec.metric)
            tasks.append(replace(spec, metric=metric, **{k: v for k, v in change.items() if k in OVERRIDABLE}))
        protocols[name] = Protocol(
            name=name,
            description=entry["description"],
            reference=entry["reference"],
            runnable=bool(entry["runnable"]),
            splits_combine=entry["splits_combine"],
            instruction=entry["instruction"],
            averages=entry["averages"],
            tasks=tuple(tasks),
            rounding=entry.get("rounding"),
        )
    return protocols


def get_protocol(name: str | None) -> Protocol:
    """A profile by name (default: mteb-cmn-v1)."""
    protocols = load_protocols()
    name = name or DEFAULT_PROTOCOL
    if name not in protocols:
        raise CmtebError(f"unknown protocol {name!r}: choose from {', '.join(protocols)}")
    return protocols[name]
