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
from typing import Any

import pandas as pd

from cmteb.results.files import atomic_write_bytes

ITEMS_SUFFIX = ".items.parquet"
#: pytrec_eval's per-query names of the retrieval metrics kept.
RETRIEVAL_MEASURES = {"ndcg_cut_10": "ndcg_at_10", "map_cut_1000": "map_at_1000"}
COLUMNS = ["split", "subset", "unit", "id", "metric", "value", "label"]


class _Capture:
    """Base of the capture mixins: remembers the split and subset being evaluated."""

    captured_items: list[dict[str, Any]]

    def _evaluate_subset(self, *args: Any, **kwargs: Any) -> Any:
        self._capture_where = (kwargs.get("hf_split"), kwargs.get("hf_subset"))
        if not hasattr(self, "captured_items"):
            self.captured_items = []
        return super()._evaluate_subset(*args, **kwargs)

    def _keep(self, unit: str, ids: list[Any], metric: str, values: list[float], labels: list[float] | None) -> None:
        split, subset = self._capture_where
        labels = labels if labels is not None else [None] * len(values)
        self.captured_items.extend(
            {
                "split": split,
                "subset": subset,
                "unit": unit,
                "id": str(i),
                "metric": metric,
                "value": float(v),
                "label": None if lab is None else float(lab),
            }
            for i, v, lab in zip(ids, values, labels, strict=True)
        )


class RetrievalCapture(_Capture):
    """Keeps mteb's per-query pytrec_eval scores (retrieval and reranking tasks)."""

    def task_specific_scores(self, scores: dict[str, dict[str, float]], *args: Any, **kwargs: Any) -> Any:
        qids = sorted(scores)
        for measure, metric in RETRIEVAL_MEASURES.items():
            self._keep("query", qids, metric, [scores[q].get(measure, 0.0) for q in qids], None)
        return super().task_specific_scores(scores, *args, **kwargs)


class STSCapture(_Capture):
    """Keeps each pair's cosine similarity and its normalised gold score (STS tasks)."""

    def _calculate_scores(self, scores: Any, normalized_scores: list[float]) -> Any:
        cosine = list(scores["cosine_scores"])
        self._keep("pair", list(range(len(cosine))), "cosine", cosine, list(normalized_scores))
        return super()._calculate_scores(scores, normalized_scores)


class PairCapture(_Capture):
    """Keeps each pair's cosine similarity and its 0/1 label (pair classification tasks)."""

    def _compute_metrics(self, similarity_scores: Any, labels: list[int]) -> Any:
        cosine = list(similarity_scores["cosine_scores"])
        self._keep("pair", list(range(len(cosine))), "cosine", cosine, list(labels))
        return super()._compute_metrics(similarity_scores, labels)


CAPTURE_MIXINS = {
    "Retrieval": RetrievalCapture,
    "Reranking": RetrievalCapture,
    "STS": STSCapture,
    "PairClassification": PairCapture,
}


def experiment_items(result: Any, task_type: str) -> list[dict[str, Any]]:
    """Per-experiment rows from a TaskResult (classification accuracy, clustering V-measure)."""
    rows = []
    for split, entries in result.scores.items():
        for entry in entries:
            if task_type == "Classification":
                values = [e.get("accuracy") for e in entry.get("scores_per_experiment") or []]
                metric = "accuracy"
            elif task_type == "Clustering":
                values = list(entry.get("v_measures") or [])
                if isinstance(entry.get("v_measures"), dict):  # hierarchical clustering: one list per level
                    values = next(iter(entry["v_measures"].values()), [])
                metric = "v_measure"
            else:
                return []
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
    frame = pd.DataFrame.from_records(rows, columns=COLUMNS)
    atomic_write_bytes(path, frame.to_parquet(index=False))
    return path


def read_items(result_file: Path) -> pd.DataFrame | None:
    """The per-item rows stored beside a result file, or None."""
    path = items_path(result_file)
    return pd.read_parquet(path) if path.is_file() else None
