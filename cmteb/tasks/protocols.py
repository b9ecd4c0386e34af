"""Protocol profiles (`cmteb/data/protocols.yaml`): the task list, data, splits, metrics and averaging
that a "C-MTEB score" was produced under. Every result records its protocol; tables, model
cards and comparisons keep protocols apart.

`resolve_protocol` is the one place that says what a protocol is: every reader (run, summary,
leaderboard, model card, compare) asks it, never the registry directly. The registry knows
nothing of protocols, so the two modules import one way only.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from cmteb.assets import PROTOCOLS_FILE
from cmteb.defaults import DEFAULT_PROTOCOL
from cmteb.errors import CmtebError
from cmteb.io import read_yaml
from cmteb.tasks.registry import TASK_TYPES, Registry, TaskSpec, load_registry, spec_from_entry

#: The label of results written by tools that do not record a protocol (scored by the registry's rules).
UNRECORDED = "unrecorded"
OVERRIDABLE = (
    "type",  # the category a protocol reports the task under (docs/adding-a-task-type.md)
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
#: Layouts cmteb reads besides the ones mteb 2 reads itself (cmteb.tasks.layouts).
LOADERS = ("cmteb-2023-retrieval", "mteb1-reranking")
#: The order in which `splits_combine: first` picks a split (FlagEmbedding's summarize_results.py).
FIRST_SPLIT_ORDER = ("test", "dev", "validation")
SPLIT_RULES = ("mean", "first")
AVG_RULES = ("tasks", "categories")


@dataclass(frozen=True)
class AveragingRule:
    """How a protocol turns task scores into category means and its Avg."""

    avg: str  # "tasks": mean over all tasks; "categories": mean of the category means
    round_task: int | None  # decimals each task's score (points) is rounded to before averaging
    text: str  # the rule in words


@dataclass(frozen=True)
class Protocol:
    """One profile: its averaged tasks, its extras (run, reported apart, never averaged) and its rules."""

    name: str
    description: str
    reference: str
    splits_combine: str
    instruction: str
    averaging: AveragingRule
    tasks: tuple[TaskSpec, ...]
    extras: tuple[TaskSpec, ...] = ()

    @property
    def all_tasks(self) -> tuple[TaskSpec, ...]:
        """The averaged tasks, then the extras."""
        return self.tasks + self.extras

    def is_extra(self, name: str) -> bool:
        """Whether `name` is run under this protocol but left out of its averages."""
        return any(t.name == name for t in self.extras)

    def get(self, name: str) -> TaskSpec:
        """A task of this protocol (averaged or extra) by name."""
        for spec in self.all_tasks:
            if spec.name == name:
                return spec
        raise CmtebError(f"protocol {self.name} has no task {name!r}: `cmteb tasks --protocol {self.name}` lists them")

    def specs(self) -> dict[str, TaskSpec]:
        """Every task of the protocol by name."""
        return {t.name: t for t in self.all_tasks}

    def by_type(self) -> dict[str, list[TaskSpec]]:
        """The averaged tasks per category, in leaderboard order."""
        return {kind: [t for t in self.tasks if t.type == kind] for kind in TASK_TYPES}

    def task_score(
        self, spec: TaskSpec, splits: Mapping[str, list[dict[str, float]]], metric: str | None = None
    ) -> float | None:
        """A task's score (a fraction) from its per-split metric entries, by the protocol's split rule.

        `mean` averages the task's eval splits present (mteb's convention); `first` takes the first of
        test, dev, validation among them (FlagEmbedding's summariser). A file of another tool without
        the task's splits falls back to the first of test, dev, validation it holds. None when absent.
        """
        metric = metric or spec.metric
        present = [s for s in spec.splits if s in splits] or [s for s in FIRST_SPLIT_ORDER if s in splits][:1]
        if self.splits_combine == "first":
            present = [s for s in FIRST_SPLIT_ORDER if s in present][:1] or present[:1]
        values = [entry[metric] for s in present for entry in splits[s] if metric in entry]
        values = [v for v in values if isinstance(v, (int, float)) and not math.isnan(v)]
        return sum(values) / len(values) if values else None

    def registry(self) -> Registry:
        """The protocol's tasks as a registry (selection by name or type, close-name suggestions)."""
        base = load_registry()
        return Registry(base.benchmark, self.all_tasks, base.instructions)

    def select(self, names: Sequence[str] | None = None, types: Sequence[str] | None = None) -> list[TaskSpec]:
        """Tasks named in `names` (in that order), or every task, filtered by `types`."""
        for name in names or ():
            self._check_name(name)
        return self.registry().select(list(names) if names else None, list(types) if types else None)

    def _check_name(self, name: str) -> None:
        """Refuse a task this protocol does not have, saying which protocol has it, or which names are close."""
        if name.lower() in {t.name.lower() for t in self.all_tasks}:
            return
        others = {p: {t.name.lower() for t in load_protocols()[p].all_tasks} for p in runnable_protocols()}
        having = [p for p, names in others.items() if name.lower() in names]
        if having:
            raise CmtebError(f"{name} is in protocol {having[0]}, not {self.name}: add --protocol {having[0]}")
        every = sorted({t.name for p in runnable_protocols() for t in load_protocols()[p].all_tasks})
        close = difflib.get_close_matches(name, every, n=3, cutoff=0.5)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise CmtebError(
            f"unknown task {name!r}{hint}: no protocol has it; `cmteb tasks --protocol P` lists a protocol's tasks"
        )


def _by_type(specs: list[TaskSpec]) -> tuple[TaskSpec, ...]:
    """Tasks grouped by type in leaderboard order, keeping their order within a type."""
    return tuple(sorted(specs, key=lambda t: TASK_TYPES.index(t.type)))


def _averaging(path: Path, name: str, entry: dict) -> AveragingRule:
    block = entry.get("averages")
    if not isinstance(block, dict) or block.get("avg") not in AVG_RULES:
        raise CmtebError(f"{path}: protocol {name} needs averages: {{avg: {'|'.join(AVG_RULES)}, round_task, text}}")
    if entry.get("splits_combine") not in SPLIT_RULES:
        raise CmtebError(f"{path}: protocol {name}: splits_combine must be one of {', '.join(SPLIT_RULES)}")
    return AveragingRule(block["avg"], block.get("round_task"), block["text"])


def _protocol_tasks(path: Path, name: str, entry: dict, base: list[TaskSpec]) -> tuple[TaskSpec, ...]:
    """The registry's tasks with the protocol's changes, plus the tasks it adds, grouped by type."""
    overrides = entry.get("tasks") or {}
    unknown = set(overrides) - {t.name for t in base}
    if unknown:
        raise CmtebError(f"{path}: protocol {name} changes unknown tasks {sorted(unknown)}")
    added = [spec_from_entry({"source": "mteb", **e}) for e in entry.get("added_tasks") or []]
    tasks = []
    for spec in [*base, *added]:
        change = dict(overrides.get(spec.name, {}))
        for key in ("splits", "hf_subsets"):
            if key in change:
                change[key] = tuple(change[key])
        if change.get("loader") not in (None, *LOADERS):
            raise CmtebError(f"{path}: protocol {name}, task {spec.name}: unknown loader {change['loader']!r}")
        kind = change.get("type", spec.type)
        if kind not in TASK_TYPES:
            raise CmtebError(f"{path}: protocol {name}, task {spec.name}: unknown type {kind!r} (cmteb/tasks/types.py)")
        metric = (entry.get("metrics") or {}).get(kind, spec.metric)
        tasks.append(replace(spec, metric=metric, **{k: v for k, v in change.items() if k in OVERRIDABLE}))
    return _by_type(tasks)  # added tasks join their category


@lru_cache(maxsize=4)
def load_protocols(path: Path = PROTOCOLS_FILE) -> dict[str, Protocol]:
    """All profiles, resolved against the registry."""
    data = read_yaml(path)
    registry = load_registry()
    extra_names = list(data.get("extras") or [])
    extras = tuple(registry.get(n) for n in extra_names)
    base = [t for t in registry.tasks if t.name not in extra_names]
    protocols = {}
    for name, entry in data["protocols"].items():
        protocols[name] = Protocol(
            name=name,
            description=entry["description"],
            reference=entry["reference"],
            splits_combine=entry["splits_combine"],
            instruction=entry["instruction"],
            averaging=_averaging(Path(path), name, entry),
            tasks=_protocol_tasks(Path(path), name, entry, base),
            extras=extras,
        )
    default = protocols[data["default"]]
    # Results of other tools (mteb 1 files of FlagEmbedding's scripts, plain mteb runs) say no protocol:
    # they are read by the registry's metrics (the C-MTEB tables' cosine AP for pair classification).
    protocols[UNRECORDED] = replace(
        default,
        name=UNRECORDED,
        description="results from a tool that does not record its protocol, scored by the registry's metrics",
        reference="cmteb/data/registry.yaml",
        splits_combine="mean",
        tasks=tuple(t for t in registry.tasks if t.name not in extra_names),
    )
    return protocols


def resolve_protocol(name: str | None) -> Protocol:
    """The protocol named `name` (default: mteb-cmn-v1; `unrecorded` for other tools' results)."""
    protocols = load_protocols()
    name = name or DEFAULT_PROTOCOL
    if name not in protocols:
        raise CmtebError(f"unknown protocol {name!r}: choose from {', '.join(runnable_protocols())}")
    return protocols[name]


def runnable_protocols() -> list[str]:
    """Names of the protocols `cmteb run --protocol` accepts."""
    return [p for p in load_protocols() if p != UNRECORDED]


def known_tasks() -> dict[str, TaskSpec]:
    """Every task any protocol scores, by name (first definition wins: the registry's)."""
    known = {t.name: t for t in load_registry().tasks}
    for protocol in load_protocols().values():
        for spec in protocol.all_tasks:
            known.setdefault(spec.name, spec)
    return known


#: mteb 1 / c-mteb task names that mteb 2 renamed (FlagEmbedding's result files use them).
MTEB1_NAMES = {"CMedQAv1": "CMedQAv1-reranking", "CMedQAv2": "CMedQAv2-reranking", "MmarcoReranking": "MMarcoReranking"}


def task_aliases() -> dict[str, str]:
    """Names results may carry -> task names (protocols run some tasks as other variants)."""
    aliases = {name: name for name in known_tasks()}
    aliases.update(MTEB1_NAMES)
    for protocol in load_protocols().values():
        aliases.update({t.run_as: t.name for t in protocol.tasks if t.run_as})
    return aliases
