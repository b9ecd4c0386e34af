"""Every use of mteb internals in cmteb, in one place.

mteb has no public hook for the per-query and per-pair values behind a main score, nor for the JSON
form `TaskResult.to_disk` writes; cmteb needs both (`cmteb compare`'s paired tests, result files
written atomically). What is used here, and what breaks when mteb changes it:

- `AbsTask._evaluate_subset(..., hf_split=, hf_subset=)`: where a capture learns the split and subset;
- `AbsTaskRetrieval.task_specific_scores(scores, ...)`: pytrec_eval's per-query scores (retrieval, reranking);
- `AbsTaskSTS._calculate_scores(scores, normalized_scores)`: the pairs' cosine scores (STS);
- `AbsTaskPairClassification._compute_metrics(similarity_scores, labels)`: the pairs' cosine scores;
- `TaskResult._round_scores(scores, 6)`: the rounding of `to_disk`;
- `AbsTaskClassification._undersample_data(dataset, ...)` and `_run_experiment(train_split, eval_split, ...)`:
  where classification labels are handed over as lists instead of lazy `datasets` columns;
- `_corpus_to_dict(row)`: how a document's text is formed, read when a run plans each task's texts
  ahead (`runner/prefetch.py`);
- `SearchEncoderWrapper._full_corpus_search(...)` and `create_dataloader(...)`: where exact search
  merges chunks with torch (`runner/search.py`), encoding each chunk as mteb does.

`tests/test_mteb_hooks.py` checks that each still exists with the arguments used, naming the one
that broke.
"""

from __future__ import annotations

from typing import Any

#: pytrec_eval's per-query names of the retrieval metrics kept.
RETRIEVAL_MEASURES = {"ndcg_cut_10": "ndcg_at_10", "map_cut_1000": "map_at_1000"}
#: (mteb class path, method, argument names cmteb relies on): what the hook test checks.
USED_INTERNALS = (
    ("mteb.abstasks.abstask.AbsTask", "_evaluate_subset", ("hf_split", "hf_subset")),
    ("mteb.abstasks.retrieval.AbsTaskRetrieval", "task_specific_scores", ("scores",)),
    ("mteb.abstasks.sts.AbsTaskSTS", "_calculate_scores", ("scores", "normalized_scores")),
    (
        "mteb.abstasks.pair_classification.AbsTaskPairClassification",
        "_compute_metrics",
        ("similarity_scores", "labels"),
    ),
    ("mteb.results.task_result.TaskResult", "_round_scores", ("scores",)),
    (
        "mteb.abstasks.classification.AbsTaskClassification",
        "_undersample_data",
        ("dataset", "experiment_num", "idxs"),
    ),
    (
        "mteb.abstasks.classification.AbsTaskClassification",
        "_run_experiment",
        ("train_split", "eval_split"),
    ),
    (
        "mteb.models.search_wrappers.SearchEncoderWrapper",
        "_full_corpus_search",
        ("query_idx_to_id", "query_embeddings", "task_metadata", "hf_subset", "hf_split", "top_k", "encode_kwargs"),
    ),
    ("mteb._create_dataloaders", "create_dataloader", ("task_metadata", "prompt_type", "batch_size", "num_proc")),
    ("mteb._create_dataloaders", "_corpus_to_dict", ("row",)),
)


def task_result_json(result: Any) -> dict[str, Any]:
    """The JSON form mteb's `TaskResult.to_disk` writes (scores rounded to 6 places)."""
    data = result.model_dump()
    data["date"] = result.date.timestamp() if result.date else None
    result._round_scores(data["scores"], 6)
    return data


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


#: The capture mixin of each capture kind a task type names (`TaskType.capture`).
CAPTURE_MIXINS = {"search": RetrievalCapture, "sts": STSCapture, "pair": PairCapture}


class _LabelsInMemory:
    """A training split whose label column reads as one Python list (select and len as the split's own).

    `datasets` 5 returns a lazy `Column` for `split[label]`, and mteb's `_undersample_data` reads it
    one element at a time, once per experiment: about 1.1 s per 8,000 rows on these machines, ten
    times per task (TNews' 53,000 training rows: over a minute). The list holds the same values in
    the same order, so every experiment draws the same training examples.
    """

    def __init__(self, split: Any, column: str) -> None:
        self._split = split
        self._column = column
        self._labels = split.select_columns([column]).to_pandas()[column].tolist()

    def __len__(self) -> int:
        return len(self._split)

    def __getitem__(self, key: str) -> Any:
        return self._labels if key == self._column else self._split[key]

    def select(self, indices: Any) -> Any:
        return self._split.select(indices)


class ClassificationLabelsInMemory:
    """Mixin for classification tasks: mteb reads labels from memory (`_LabelsInMemory`).

    Both where it undersamples the training split and where each experiment fits on the training
    labels and scores against the test labels: scikit-learn turns `y_test` into an array several
    times per metric, and a lazy `Column` is read one row at a time each time (Waimai, 1,000 test
    texts: 1.16 million row reads and 46 of its 48 seconds with cached embeddings).
    """

    _test_labels: tuple[Any, _LabelsInMemory] | None = None  # (split, its labels): one split per task

    def _undersample_data(self, dataset: Any, experiment_num: int, idxs: list[int] | None = None) -> Any:
        labels = _LabelsInMemory(dataset, self.label_column_name)  # type: ignore[attr-defined]
        return super()._undersample_data(labels, experiment_num, idxs)  # type: ignore[misc]

    def _run_experiment(self, train_split: Any, eval_split: Any, *args: Any, **kwargs: Any) -> Any:
        column = self.label_column_name  # type: ignore[attr-defined]
        if self._test_labels is None or self._test_labels[0] is not eval_split:  # read once for all experiments
            self._test_labels = (eval_split, _LabelsInMemory(eval_split, column))
        train = _LabelsInMemory(train_split, column)
        return super()._run_experiment(train, self._test_labels[1], *args, **kwargs)  # type: ignore[misc]
