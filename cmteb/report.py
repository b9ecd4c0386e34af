"""One-screen summaries of a run and of the task registry, for the terminal."""

from __future__ import annotations

import math
from collections.abc import Iterable

from rich.console import Console
from rich.table import Table

from cmteb.registry import TASK_TYPES, TaskSpec
from cmteb.runner import RunSummary


def _points(value: float) -> str:
    return "—" if math.isnan(value) else f"{100 * value:.2f}"


def category_means(summary: RunSummary) -> list[tuple[str, float, int]]:
    """(type, mean score, number of tasks) per task type present, in leaderboard order."""
    rows = []
    for task_type in TASK_TYPES:
        values = [o.score for o in summary.outcomes if o.spec.type == task_type and not math.isnan(o.score)]
        if values:
            rows.append((task_type, sum(values) / len(values), len(values)))
    return rows


def summary_table(summary: RunSummary) -> Table:
    """Task, type, metric, score (points), seconds, and whether it ran or was resumed."""
    table = Table(title=f"{summary.model_name} ({summary.revision}) — results in {summary.output_dir}")
    for column in ("task", "type", "metric", "score", "seconds", "status"):
        table.add_column(column, justify="right" if column in ("score", "seconds") else "left")
    for o in summary.outcomes:
        table.add_row(o.spec.name, o.spec.type, o.spec.metric, _points(o.score), f"{o.seconds:.1f}", o.status)
    table.add_section()
    for task_type, mean, n in category_means(summary):
        table.add_row(f"{task_type} mean", "", f"{n} tasks", _points(mean), "", "")
    scored = [o.score for o in summary.outcomes if not math.isnan(o.score)]
    if scored:
        table.add_row(
            "Avg (over tasks)",
            "",
            f"{len(scored)} tasks",
            _points(sum(scored) / len(scored)),
            f"{summary.seconds:.1f}",
            "",
        )
    return table


def wide_console() -> Console:
    """A stdout console at least 120 columns wide, so tables are not cut when output is piped."""
    console = Console()
    return console if console.is_terminal and console.width >= 120 else Console(width=max(console.width, 120))


def print_summary(summary: RunSummary, console: Console | None = None) -> None:
    """Print the run summary."""
    (console or wide_console()).print(summary_table(summary))


def tasks_table(specs: Iterable[TaskSpec]) -> Table:
    """The registry listing: name, type, split, metric, hub repo."""
    table = Table()
    for column in ("name", "type", "split", "metric", "repo"):
        table.add_column(column)
    for s in specs:
        table.add_row(s.name, s.type, ",".join(s.splits), s.metric, s.repo)
    return table
