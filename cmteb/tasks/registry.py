"""The task registry: `cmteb/data/registry.yaml` read into typed records."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cmteb.assets import REGISTRY_FILE
from cmteb.errors import CmtebError
from cmteb.io import read_yaml
from cmteb.tasks.types import TASK_TYPES


@dataclass(frozen=True)
class TaskSpec:
    """One registered task: what to load and how it is scored."""

    name: str
    type: str
    repo: str
    revision: str
    splits: tuple[str, ...]
    metric: str
    main_score: str
    instruction: bool
    source: str
    run_as: str | None = None  # the mteb task run for it, when a protocol uses another variant
    variant: str = "v1"
    qrels_repo: str | None = None  # where a protocol keeps qrels in a separate repo
    qrels_revision: str | None = None
    loader: str | None = None  # a hub layout mteb 2 no longer reads (see cmteb.tasks.layouts)
    hf_subsets: tuple[str, ...] | None = None  # the subsets scored, for multilingual tasks

    @property
    def repos(self) -> tuple[tuple[str, str], ...]:
        """Every (repo, revision) the task reads: its dataset and, where separate, its qrels."""
        repos = [(self.repo, self.revision)]
        if self.qrels_repo:
            repos.append((self.qrels_repo, self.qrels_revision or self.revision))
        return tuple(repos)

    @property
    def in_mteb(self) -> bool:
        """Whether mteb's own task registry defines this task."""
        return self.source == "mteb"


@dataclass(frozen=True)
class Registry:
    """All registered tasks, in registry order, and the retrieval instructions."""

    benchmark: str
    tasks: tuple[TaskSpec, ...]
    instructions: dict[str, str]

    def names(self) -> list[str]:
        """Task names in registry order."""
        return [t.name for t in self.tasks]

    def get(self, name: str) -> TaskSpec:
        """Look a task up by name (case-insensitive); unknown names suggest the closest ones."""
        by_lower = {t.name.lower(): t for t in self.tasks}
        if name.lower() in by_lower:
            return by_lower[name.lower()]
        close = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.5)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise CmtebError(f"unknown task {name!r}{hint}: `cmteb tasks` lists the registered tasks")

    def select(self, names: list[str] | None = None, types: list[str] | None = None) -> list[TaskSpec]:
        """Tasks named in `names` (in the given order), or all tasks, filtered by `types`."""
        if types:
            known = {t.lower(): t for t in TASK_TYPES}
            unknown = [t for t in types if t.lower() not in known]
            if unknown:
                raise CmtebError(f"unknown task type {unknown[0]!r}: choose from {', '.join(TASK_TYPES)}")
            wanted = {known[t.lower()] for t in types}
        else:
            wanted = set(TASK_TYPES)
        chosen = [self.get(n) for n in names] if names else list(self.tasks)
        return [t for t in chosen if t.type in wanted]


def spec_from_entry(entry: dict) -> TaskSpec:
    """A TaskSpec from a registry (or protocol `added_tasks`) entry."""
    subsets = entry.get("hf_subsets")
    return TaskSpec(
        name=entry["name"],
        type=entry["type"],
        repo=entry["repo"],
        revision=str(entry["revision"]),
        splits=tuple(entry["splits"]),
        metric=entry["metric"],
        main_score=entry["main_score"],
        instruction=bool(entry["instruction"]),
        source=entry["source"],
        hf_subsets=tuple(subsets) if subsets else None,
    )


@lru_cache(maxsize=4)
def load_registry(path: Path = REGISTRY_FILE) -> Registry:
    """Read the registry file."""
    data = read_yaml(path)
    return Registry(
        benchmark=data["benchmark"],
        tasks=tuple(spec_from_entry(e) for e in data["tasks"]),
        instructions=dict(data["instructions"]),
    )
