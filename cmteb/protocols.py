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
from cmteb.registry import TASK_TYPES, TaskSpec, load_registry, spec_from_entry

PROTOCOLS_FILE = TASKS_DIR / "protocols.yaml"
DEFAULT_PROTOCOL = "mteb-cmn-v1"
OVERRIDABLE = (
    "repo",
    "revision",
    "splits",
    "run_as",
    "variant",
    "qrels_repo",
    "qrels_revision",
    "loader",
    "hf_subsets",
)
#: Layouts cmteb reads besides the ones mteb 2 reads itself (cmteb.legacy_layouts).
LOADERS = ("cmteb-2023-retrieval", "mteb1-reranking")


@dataclass(frozen=True)
class Protocol:
    """One profile: its tasks (registry entries with the profile's changes) and its rules."""

    name: str
    description: str
    reference: str
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
        extra = [spec_from_entry({"source": "mteb", **e}) for e in entry.get("extra_tasks") or []]
        tasks = []
        for spec in [*base, *extra]:
            change = dict(overrides.get(spec.name, {}))
            for key in ("splits", "hf_subsets"):
                if key in change:
                    change[key] = tuple(change[key])
            if change.get("loader") not in (None, *LOADERS):
                raise CmtebError(f"{path}: protocol {name}, task {spec.name}: unknown loader {change['loader']!r}")
            metric = (entry.get("metrics") or {}).get(spec.type, spec.metric)
            tasks.append(replace(spec, metric=metric, **{k: v for k, v in change.items() if k in OVERRIDABLE}))
        tasks.sort(key=lambda t: TASK_TYPES.index(t.type))  # extra tasks join their category
        protocols[name] = Protocol(
            name=name,
            description=entry["description"],
            reference=entry["reference"],
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
