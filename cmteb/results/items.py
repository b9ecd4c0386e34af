"""Per-query and per-item values behind each main score, kept next to the result for paired tests.

`cmteb compare` tests a drop for significance without the model, from these values:
- Retrieval and Reranking: each query's nDCG@10 and AP (map_at_1000), as pytrec_eval computed
  them inside mteb's evaluator (the scores mteb averages);
- STS and PairClassification: each pair's cosine similarity and gold score/label (Spearman and
  AP are recomputed on resamples; they are not means of per-item values);
- Classification and Clustering: mteb's repeated experiments (accuracy per experiment, V-measure
  per clustering run), paired by experiment index: the spread mteb itself reports.

Stored as `<Task>.items.parquet` (columns: split, subset, unit, id, metric, value, label).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from cmteb.io import atomic_write_bytes
from cmteb.tasks.types import task_type

if TYPE_CHECKING:  # imported where a table is built: a run that copies stored results needs none
    import pandas as pd

ITEMS_SUFFIX = ".items.parquet"
COLUMNS = ["split", "subset", "unit", "id", "metric", "value", "label"]


def _experiment_values(entry: dict[str, Any], metric: str) -> list[Any]:
    """mteb's per-experiment values of one score entry: accuracy per experiment, V-measure per clustering run."""
    if metric == "accuracy":
        return [e.get("accuracy") for e in entry.get("scores_per_experiment") or []]
    values = entry.get("v_measures") or []
    if isinstance(values, dict):  # hierarchical clustering: one list per level
        values = next(iter(values.values()), [])
    return list(values)


def experiment_items(result: Any, kind: str) -> list[dict[str, Any]]:
    """Per-experiment rows from a TaskResult, for the task types whose mteb evaluator repeats experiments."""
    metric = task_type(kind).experiments
    if metric is None:
        return []
    rows = []
    for split, entries in result.scores.items():
        for entry in entries:
            values = _experiment_values(entry, metric)
            rows.extend(
                {
                    "split": split,
                    "subset": entry.get("hf_subset", "default"),
                    "unit": "experiment",
                    "id": str(i),
                    "metric": metric,
                    "value": float(v),
                    "label": None,
                }
                for i, v in enumerate(values)
                if v is not None
            )
    return rows


def items_path(result_file: Path) -> Path:
    """`<Task>.items.parquet` beside `<Task>.json`."""
    return Path(result_file).with_suffix("").with_suffix(ITEMS_SUFFIX)


def write_items(result_file: Path, rows: list[dict[str, Any]]) -> Path | None:
    """Write the per-item rows of a task atomically; None when there are none."""
    if not rows:
        return None
    path = items_path(result_file)
    import pandas as pd

    frame = pd.DataFrame.from_records(rows, columns=COLUMNS)
    atomic_write_bytes(path, frame.to_parquet(index=False))
    return path


def read_items(result_file: Path) -> pd.DataFrame | None:
    """The per-item rows stored beside a result file, or None."""
    path = items_path(result_file)
    import pandas as pd

    return pd.read_parquet(path) if path.is_file() else None
