"""One-screen summaries of a run and of the task registry, for the terminal."""

from __future__ import annotations

import math
from collections.abc import Iterable

from rich import box
from rich.console import Console
from rich.table import Table

from cmteb.report.averages import MISSING, Average, Averages, protocol_averages, task_points
from cmteb.results.outcome import RunSummary, TaskOutcome
from cmteb.tasks.protocols import Protocol, resolve_protocol
from cmteb.tasks.registry import TaskSpec

#: What a run on the bundled samples must say of its scores.
SAMPLES_NOTE = (
    "Measured on the bundled sample data (a few hand-written Chinese items per task, not the C-MTEB data): "
    "these scores say nothing of a model's C-MTEB quality; many tasks are easy enough to score 100"
)


def _points(value: float | None) -> str:
    return "—" if value is None or math.isnan(value) else f"{100 * value:.2f}"


def run_averages(summary: RunSummary, *, first_stage: bool = False) -> Averages:
    """The run's Avg and category means by its protocol's rule: what `cmteb leaderboard` prints for it."""
    protocol = resolve_protocol(summary.protocol)
    scores = {}
    for o in summary.outcomes:
        value = o.first_stage_score if first_stage else o.score
        if value is not None and not math.isnan(value):
            scores[o.spec.name] = task_points(protocol, value)
    return protocol_averages(protocol, scores)


def _title(summary: RunSummary) -> str:
    """Model, revision, non-default settings, protocol; and a warning when the data were the samples."""
    settings = f", {summary.settings}" if summary.settings else ""
    samples = " — on the bundled SAMPLE data, not C-MTEB" if summary.data == "samples" else ""
    return f"{summary.model_name} ({summary.revision}{settings}) — protocol {summary.protocol}{samples}"


def _caption(summary: RunSummary, protocol: Protocol) -> str:
    """Where results went, under which name and why, how averages are taken; the samples note last."""
    samples = f". {SAMPLES_NOTE}" if summary.data == "samples" else ""
    recipe = f"{summary.recipe}; " if summary.recipe else ""
    return f"results in {summary.output_dir}; {summary.naming}; {recipe}{protocol.averaging.text}{samples}"


def _coverage(average: Average) -> str:
    """How many of the tasks an average covers are present: `7 tasks`, or `1 of 7 tasks` (no average then)."""
    return f"{average.total} tasks" if average.value is not None else f"{average.present} of {average.total} tasks"


def _value(average: Average) -> str:
    """The average's value, or `—` while it is partial (the coverage column says how partial)."""
    return average.cell() if average.value is not None else MISSING


def summary_table(summary: RunSummary) -> Table:
    """Per task, under its type: metric, score (points), seconds, status; then the protocol's averages, each with
    how many of its tasks are present (a partial average shows `—`: `1 of 7 tasks`).

    The type heads its group instead of filling a column, so the table fits 80 columns with every name whole.
    The protocol's extras (the cross-lingual reranking tasks) are listed in a section of their own and are in
    no average. Two-stage runs add the first stage's score.
    """
    protocol = resolve_protocol(summary.protocol)
    two_stage = any(o.first_stage_score is not None for o in summary.outcomes)
    table = Table(title=_title(summary), caption=_caption(summary, protocol), box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("task", "metric", *(["first stage"] if two_stage else []), "score", "seconds", "status"):
        right = column in ("first stage", "score", "seconds")
        table.add_column(column, justify="right" if right else "left", no_wrap=True)

    def row(task: str, metric: str = "", first: str = "", value: str = "", seconds: str = "", status: str = "") -> None:
        table.add_row(task, metric, *([first] if two_stage else []), value, seconds, status)

    def task_row(o: TaskOutcome) -> None:
        row(
            f"  {o.spec.name}",
            o.spec.metric,
            _points(o.first_stage_score),
            _points(o.score),
            f"{o.seconds:.1f}",
            o.status,
        )

    counted = [o for o in summary.outcomes if not protocol.is_extra(o.spec.name)]
    for kind in dict.fromkeys(o.spec.type for o in counted):
        row(f"[bold]{kind}[/bold]")
        for o in counted:
            if o.spec.type == kind:
                task_row(o)
    table.add_section()
    averages, first = run_averages(summary), run_averages(summary, first_stage=True)
    for kind, average in averages.categories.items():
        if average.present:
            row(
                f"mean {kind}", _coverage(average), _value(first.categories[kind]) if two_stage else "", _value(average)
            )
    first_avg = _value(first.avg) if two_stage else ""
    row("Avg C-MTEB", _coverage(averages.avg), first_avg, _value(averages.avg), f"{summary.seconds:.1f}")
    extras = [o for o in summary.outcomes if protocol.is_extra(o.spec.name)]
    if extras:
        table.add_section()
        row("[bold]extras[/bold] (in no average)")
        for o in extras:
            task_row(o)
    return table


def terminal() -> Console:
    """A stdout console as wide as the terminal (or `COLUMNS`; 80 when piped): tables fit it, their name
    columns never cut (other columns fold onto more lines)."""
    return Console()


def print_summary(summary: RunSummary, console: Console | None = None) -> None:
    """Print the run summary."""
    (console or terminal()).print(summary_table(summary))


def tasks_table(protocol: Protocol, specs: Iterable[TaskSpec]) -> Table:
    """A protocol's task listing, each type heading its tasks: name, splits, metric, and whether its averages
    include it (the hub repos and revisions: `cmteb tasks --json`). It fits 80 columns with every cell whole."""
    title = f"protocol {protocol.name}: {len(protocol.tasks)} C-MTEB tasks, {len(protocol.extras)} extras"
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("name", "split", "metric", "in Avg"):
        table.add_column(column, no_wrap=True)
    specs = list(specs)
    for kind in dict.fromkeys(s.type for s in specs):
        table.add_row(f"[bold]{kind}[/bold]")
        for s in (s for s in specs if s.type == kind):
            extra = "extra" if protocol.is_extra(s.name) else "yes"
            table.add_row(f"  {s.name}", ",".join(s.splits), s.metric, extra)
    caption = "repos and revisions: cmteb tasks --json"
    if protocol.extras:
        names = " and ".join(t.name for t in protocol.extras)
        caption = f"extra: {names}, run when named or with their type, in no average; {caption}"
    table.caption = caption
    return table
