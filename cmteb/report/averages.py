"""The one averaging rule: category means and Avg of a protocol, from task scores.

The run summary, the leaderboard, the model card and `compare` all average through
`protocol_averages`, so a number printed in one place is the number printed in the others. The
protocol decides which tasks an average covers, how (`averages:` in `cmteb/data/protocols.yaml`) and
whether task scores are rounded first; its extras (the cross-lingual reranking tasks) are never
inside an average. An average over fewer tasks than it covers is no number but "partial: k of n".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from cmteb.tasks.protocols import Protocol
from cmteb.tasks.registry import TASK_TYPES

MISSING = "—"


@dataclass(frozen=True)
class Average:
    """One average: its value when every task it covers is present, else only the counts."""

    value: float | None  # points; None unless complete
    present: int
    total: int

    def cell(self) -> str:
        """`64.53`, `partial: k of n tasks`, or `—` when no task is present."""
        if self.value is not None:
            return f"{self.value:.2f}"
        return f"partial: {self.present} of {self.total} tasks" if self.present else MISSING


@dataclass(frozen=True)
class Averages:
    """A protocol's Avg and category means of one system, and its extras apart."""

    protocol: str
    avg: Average
    categories: dict[str, Average]
    extras: dict[str, float]  # points; never part of an average

    def values(self) -> dict[str, float | None]:
        """Complete means only (None where partial), keyed `Avg` and by category: for sorting and deltas."""
        return {"Avg": self.avg.value, **{kind: a.value for kind, a in self.categories.items()}}


def _rounded(protocol: Protocol, value: float | None) -> float | None:
    digits = protocol.averaging.round_task
    return value if value is None or digits is None else round(value, digits)


def _average(values: list[float | None]) -> Average:
    present = [v for v in values if v is not None]
    complete = bool(values) and len(present) == len(values)
    return Average(sum(present) / len(present) if complete else None, len(present), len(values))


def protocol_averages(protocol: Protocol, scores: Mapping[str, float | None]) -> Averages:
    """Avg and category means of task `scores` (points, by task name) under `protocol`'s rule."""
    by_type = protocol.by_type()
    per_type = {kind: [_rounded(protocol, scores.get(t.name)) for t in by_type[kind]] for kind in TASK_TYPES}
    categories = {kind: _average(values) for kind, values in per_type.items() if values}
    if protocol.averaging.avg == "categories":
        means = [categories[kind].value for kind in categories]
        present = sum(a.present for a in categories.values())
        total = sum(a.total for a in categories.values())
        complete = all(m is not None for m in means)
        avg = Average(sum(means) / len(means) if complete and means else None, present, total)  # type: ignore[arg-type]
    else:
        avg = _average([v for values in per_type.values() for v in values])
    extras = {t.name: scores[t.name] for t in protocol.extras if scores.get(t.name) is not None}
    return Averages(protocol.name, avg, categories, extras)  # type: ignore[arg-type]


def task_points(protocol: Protocol, value: float | None) -> float | None:
    """A task's score as the protocol's tables show it: points, rounded where the protocol rounds."""
    return _rounded(protocol, None if value is None else 100 * value)
