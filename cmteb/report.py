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


def _mean(values: Iterable[float | None]) -> float | None:
    kept = [v for v in values if v is not None and not math.isnan(v)]
    return sum(kept) / len(kept) if kept else None


def category_means(summary: RunSummary, *, first_stage: bool = False) -> list[tuple[str, float, int]]:
    """(type, mean score, number of tasks) per task type present, in leaderboard order."""
    rows = []
    for task_type in TASK_TYPES:
        outcomes = [o for o in summary.outcomes if o.spec.type == task_type]
        mean = _mean(o.first_stage_score if first_stage else o.score for o in outcomes)
        if mean is not None:
            rows.append((task_type, mean, len(outcomes)))
    return rows


def summary_table(summary: RunSummary) -> Table:
    """Task, type, metric, score (points), seconds, status; two-stage runs add the first stage's score."""
    two_stage = any(o.first_stage_score is not None for o in summary.outcomes)
    table = Table(
        title=f"{summary.model_name} ({summary.revision}) — protocol {summary.protocol}",
        caption=f"results in {summary.output_dir}",
    )
    right = {"first stage", "score", "seconds"}
    for column in ("task", "type", "metric", *(["first stage"] if two_stage else []), "score", "seconds", "status"):
        table.add_column(column, justify="right" if column in right else "left")

    def row(task: str, kind: str, metric: str, first: float | None, value: float, seconds: str, status: str) -> None:
        cells = [task, kind, metric]
        if two_stage:
            cells.append("" if first is None else _points(first))
        table.add_row(*cells, _points(value), seconds, status)

    for o in summary.outcomes:
        row(o.spec.name, o.spec.type, o.spec.metric, o.first_stage_score, o.score, f"{o.seconds:.1f}", o.status)
    table.add_section()
    first_means = {t: m for t, m, _ in category_means(summary, first_stage=True)}
    for task_type, mean, n in category_means(summary):
        row(f"{task_type} mean", "", f"{n} tasks", first_means.get(task_type), mean, "", "")
    average = _mean(o.score for o in summary.outcomes)
    if average is not None:
        n = sum(not math.isnan(o.score) for o in summary.outcomes)
        first = _mean(o.first_stage_score for o in summary.outcomes)
        row("Avg (over tasks)", "", f"{n} tasks", first, average, f"{summary.seconds:.1f}", "")
        categories = category_means(summary)
        first_categories = category_means(summary, first_stage=True)
        row(
            "Avg (over categories)",
            "",
            f"{len(categories)} categories",
            _mean(m for _, m, _ in first_categories) if first_categories else None,
            _mean(m for _, m, _ in categories),
            "",
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
