"""What a run returns: one outcome per task and the run's summary (read by the report, written by the runner)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cmteb.results.files import read_task_result
from cmteb.tasks.protocols import DEFAULT_PROTOCOL
from cmteb.tasks.registry import TaskSpec


@dataclass
class TaskOutcome:
    """What happened to one task in a run."""

    spec: TaskSpec
    status: str  # "ran", "skipped" (result already there) or "reused" (from the result store)
    score: float  # by the protocol's metric and split rule, as every table shows it
    seconds: float
    path: Path
    loaded: Any = None  # the mteb TaskResult, when already in memory
    first_stage_score: float | None = None  # two-stage runs: the embedder's own score

    @property
    def result(self) -> Any:
        """The mteb TaskResult (read from the result file on first use when not in memory)."""
        if self.loaded is None and self.path.is_file():
            self.loaded = read_task_result(self.path)
        return self.loaded


@dataclass
class RunSummary:
    """The outcome of a run: where results went and one row per task."""

    model_name: str
    revision: str | None
    output_dir: Path
    embedding_dim: int | None
    outcomes: list[TaskOutcome] = field(default_factory=list)
    seconds: float = 0.0
    protocol: str = DEFAULT_PROTOCOL
    naming: str = ""  # which name the results are filed under, and why
    data: str = "hub"  # where the data came from: "hub", a "local" mirror, or the bundled "samples"
    settings: str = ""  # the non-default settings that change scores, in words
    recipe: str = ""  # how the model runs: its family, what recognised it, pooling, instructions (in words)
