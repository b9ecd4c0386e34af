"""Mean (TaskType) and the Borda rank, as mteb's leaderboard summarises a benchmark.

mteb 2.26 (mteb/benchmarks/_create_table.py): `Mean (TaskType)` is the mean of the task-type means, each
the mean of its tasks, and empty when any task is missing (`mean_horizontal(ignore_nulls=False)`);
`Rank (Borda)` ranks the models within each task (higher score first, ties sharing the average rank), gives
each model `n_models - rank` points per task it has (0 for a task it lacks), sums them, and ranks the sums
with ties sharing the best rank (`method="min"`). mteb's own are private polars expressions inside its table
builder (`_get_borda_rank`, `_mean_or_null`), and the leaderboard renders result files without importing mteb
(about a second), so the few lines are here, in pandas, checked against mteb's own summary on the same result
files (tests/test_ranking.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd


def mean_of_task_types(values: Mapping[str, float | None]) -> float | None:
    """The mean of the category means (points; `values` as `category_values` gives them, keyed by category and
    "Avg"), or None unless every category is complete."""
    means = [v for kind, v in values.items() if kind != "Avg"]
    if not means or any(m is None for m in means):
        return None
    return sum(means) / len(means)  # type: ignore[arg-type]


def borda_ranks(scores: Mapping[str, Mapping[str, float]], tasks: Sequence[str]) -> dict[str, int]:
    """The Borda rank of each system (key of `scores`: its task scores) over `tasks`; systems without a score
    on any of them get none."""
    frame = pd.DataFrame({name: {t: s.get(t) for t in tasks} for name, s in scores.items()}).T
    frame = frame.astype(float).dropna(how="all")
    if frame.empty:
        return {}
    ranks = frame.rank(method="average", ascending=False)  # NaN stays NaN: a missing task earns nothing
    points = (len(frame) - ranks).fillna(0).sum(axis=1)
    return {name: int(rank) for name, rank in points.rank(method="min", ascending=False).items()}
