"""Every use of mteb internals in cmteb, in one place.

mteb has no public hook for the per-query and per-pair values behind a main score, nor for the JSON
form `TaskResult.to_disk` writes; cmteb needs both (`cmteb compare`'s paired tests, result files
written atomically). What is used here, and what breaks when mteb changes it:

- `AbsTask._evaluate_subset(..., hf_split=, hf_subset=)`: where a capture learns the split and subset;
- `AbsTaskRetrieval.task_specific_scores(scores, ...)`: pytrec_eval's per-query scores (retrieval, reranking);
- `AbsTaskSTS._calculate_scores(scores, normalized_scores)`: the pairs' cosine scores (STS);
- `AbsTaskPairClassification._compute_metrics(similarity_scores, labels)`: the pairs' cosine scores;
- `TaskResult._round_scores(scores, 6)`: the rounding of `to_disk`;
- `AbsTaskClassification._evaluate_subset(model, data_split)` (and its cross-validation twin),
  `AbsTaskClusteringLegacy.evaluator` and `_compute_metrics(labels, ...)`, and the
  `_evaluate_subset(model, data_split)` of `AbsTaskPairClassification` and `AbsTaskSTS`: where
  splits are handed over with columns read into lists (`cmteb.columns`), not read row by row;
- `AbsTaskClassification._undersample_data(dataset, experiment_num, idxs)`: which training examples
  each experiment draws, read when a run plans each task's texts ahead (`runner/prefetch.py`);
- `RetrievalDatasetLoader._load_qrels(num_proc)`, `._load_dataset_split(config, num_proc)` and the
  loader's name in `mteb.abstasks.retrieval`: where the qrels of mteb's retrieval layout are read
  in one pass over their columns (`QrelsInOnePass`);
- `SearchEncoderWrapper._full_corpus_search(...)` and `create_dataloader(...)`: where exact search
  merges chunks with torch (`runner/search.py`), encoding each chunk as mteb does;
  `SearchEncoderWrapper.index(corpus, task_metadata=)` and `.search(queries, task_metadata=)`: where
  the corpus and queries are handed over with columns read into lists (mteb's document loader then
  maps each row through a view, `ColumnsInMemory.map`, instead of through `datasets`);
- the name `pytrec_eval` in `mteb._evaluators.retrieval_metrics`, its `RelevanceEvaluator(qrels, measures)`
  and `.evaluate(run)`, and `calculate_retrieval_scores`: where a retrieval or reranking task scores its run
  a slice of queries at a time (`PytrecInSlices`).

`tests/test_mteb_hooks.py` checks that each still exists with the arguments used, naming the one
that broke.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

from cmteb.columns import ColumnsInMemory, column_values

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
    ("mteb.abstasks.classification.AbsTaskClassification", "_evaluate_subset", ("model", "data_split")),
    (
        "mteb.abstasks.classification.AbsTaskClassification",
        "_evaluate_subset_cross_validation",
        ("model", "data_split"),
    ),
    ("mteb.abstasks.clustering_legacy.AbsTaskClusteringLegacy", "_compute_metrics", ("labels",)),
    ("mteb.abstasks.pair_classification.AbsTaskPairClassification", "_evaluate_subset", ("model", "data_split")),
    ("mteb.abstasks.sts.AbsTaskSTS", "_evaluate_subset", ("model", "data_split")),
    ("mteb._evaluators.clustering_evaluator.ClusteringEvaluator", "__init__", ("dataset",)),
    (
        "mteb.models.search_wrappers.SearchEncoderWrapper",
        "_full_corpus_search",
        ("query_idx_to_id", "query_embeddings", "task_metadata", "hf_subset", "hf_split", "top_k", "encode_kwargs"),
    ),
    ("mteb._create_dataloaders", "create_dataloader", ("task_metadata", "prompt_type", "batch_size", "num_proc")),
    ("mteb.models.search_wrappers.SearchEncoderWrapper", "index", ("corpus", "task_metadata")),
    ("mteb.models.search_wrappers.SearchEncoderWrapper", "search", ("queries", "task_metadata")),
    (
        "mteb.abstasks.classification.AbsTaskClassification",
        "_undersample_data",
        ("dataset", "experiment_num", "idxs"),
    ),
    ("mteb.abstasks.retrieval.RetrievalDatasetLoader", "_load_qrels", ("num_proc",)),
    ("mteb.abstasks.retrieval.RetrievalDatasetLoader", "_load_dataset_split", ("config", "num_proc")),
    ("mteb._evaluators.retrieval_metrics.pytrec_eval", "RelevanceEvaluator", ()),
    ("mteb._evaluators.retrieval_metrics", "calculate_retrieval_scores", ("results", "qrels", "k_values")),
)
#: Query-document pairs of a run that one pytrec_eval call scores (`PytrecInSlices`): about 0.1 s of a core.
PYTREC_SLICE_PAIRS = 32_000


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


def union_of_experiments(task: Any, train: Any) -> list[int]:
    """The training rows a classification task's experiments draw, sorted: mteb's own undersampling, run
    for each experiment in turn as its `_evaluate_subset` runs it (each shuffles the previous order)."""
    order, drawn = None, set()
    for experiment in range(task.n_experiments):
        _, order, selected = task._undersample_data(train, experiment, order)
        drawn.update(selected)
    return sorted(drawn)


def _in_memory(splits: Any) -> dict[str, ColumnsInMemory]:
    return {name: ColumnsInMemory(split) for name, split in splits.items()}


class ClassificationInMemory:
    """Mixin for classification tasks: mteb reads the splits' texts and labels from lists.

    Where it undersamples the training split (labels read one element at a time, once per
    experiment: TNews' 53,000 training rows, over a minute), where it builds each encode call's
    data loader (11 s for TNews and IFlyTek at full size), and where each experiment fits on the
    training labels and scores against the test labels (scikit-learn turns `y_test` into an array
    several times per metric: Waimai, 46 of its 48 s with cached embeddings). Same rows, same
    order: every experiment draws the same training examples (`cmteb.columns`).
    """

    def _evaluate_subset(self, model: Any, data_split: Any, *args: Any, **kwargs: Any) -> Any:
        return super()._evaluate_subset(model, _in_memory(data_split), *args, **kwargs)  # type: ignore[misc]

    def _evaluate_subset_cross_validation(self, model: Any, data_split: Any, *args: Any, **kwargs: Any) -> Any:
        return super()._evaluate_subset_cross_validation(model, _in_memory(data_split), *args, **kwargs)  # type: ignore[misc]


class ClusteringInMemory:
    """Mixin for (legacy) clustering tasks: each set's texts and labels are read from lists.

    mteb builds a `Dataset` per cluster set and hands it to its evaluator, which builds a data
    loader from the text column and counts the labels row by row; the set's labels are then read
    row by row again for the v-measure (CLSClusteringS2S and ThuNewsClusteringP2P at full size:
    39 s of data loaders, 14 s of label reads).
    """

    @property
    def evaluator(self) -> Any:
        evaluator_class = super().evaluator  # type: ignore[misc]
        return lambda dataset, **kwargs: evaluator_class(ColumnsInMemory(dataset), **kwargs)

    def _compute_metrics(self, labels: Any, *args: Any, **kwargs: Any) -> Any:
        return super()._compute_metrics(_listed(labels), *args, **kwargs)  # type: ignore[misc]


class PairsInMemory:
    """Mixin for pair classification tasks: both sentence columns and the labels are read from lists.

    As mteb does, a split in the one-row v1 layout is first expanded to one row per pair.
    """

    def _evaluate_subset(self, model: Any, data_split: Any, *args: Any, **kwargs: Any) -> Any:
        from datasets import Dataset

        rows = data_split
        if self.metadata.modalities == ["text"] and len(data_split) == 1:  # type: ignore[attr-defined]
            rows = Dataset.from_dict(data_split[0])
        # A one-pair split stays a Dataset: mteb would take its one row for the v1 layout again.
        in_memory = ColumnsInMemory(rows) if len(rows) > 1 else data_split
        return super()._evaluate_subset(model, in_memory, *args, **kwargs)  # type: ignore[misc]


class STSInMemory:
    """Mixin for STS tasks: the gold scores and both sentence columns are read from lists.

    mteb reads the gold scores row by row (ATEC and BQ at full size: 1.6 s); its data loaders then
    read the view (`cmteb.models.adapter.loader_texts`).
    """

    def _evaluate_subset(self, model: Any, data_split: Any, *args: Any, **kwargs: Any) -> Any:
        return super()._evaluate_subset(model, ColumnsInMemory(data_split), *args, **kwargs)  # type: ignore[misc]


def _listed(values: Any) -> Any:
    """A lazy `datasets` column as a list, read in one slice; anything else as it is."""
    from datasets.arrow_dataset import Column

    return values[:] if isinstance(values, Column) else values


#: The in-memory mixins a task type can name (`TaskType.in_memory`), for evaluations that read columns row by row.
IN_MEMORY_MIXINS = {
    "labelled": ClassificationInMemory,
    "clusters": ClusteringInMemory,
    "pairs": PairsInMemory,
    "sts": STSInMemory,
}


@cache
def _qrels_loader() -> type:
    """mteb's retrieval loader with `_load_qrels` reading the qrels in one pass (see `QrelsInOnePass`)."""
    from datasets import Features, Value
    from mteb.abstasks.retrieval_dataset_loaders import RetrievalDatasetLoader

    class ColumnsQrelsLoader(RetrievalDatasetLoader):
        def _load_qrels(self, num_proc: int | None) -> dict[str, dict[str, int]]:
            # The config and the cast are mteb's own (mteb 2.26, retrieval_dataset_loaders.py).
            config = f"{self.config}-qrels" if self.config is not None else "default"
            if config == "default" and config not in self.dataset_configs:
                if "qrels" not in self.dataset_configs:
                    raise ValueError(
                        "No qrels or default config found. Please specify a valid config or ensure the dataset "
                        "has qrels."
                    )
                config = "qrels"
            features = {"query-id": Value("string"), "corpus-id": Value("string"), "score": Value("int32")}
            rows = self._load_dataset_split(config, num_proc).select_columns(list(features))
            rows = rows.cast(Features(features))
            relevant: dict[str, dict[str, int]] = {}
            columns = [column_values(rows, name) for name in features]
            for query, document, score in zip(*columns, strict=True):
                relevant.setdefault(query, {})[document] = score  # a repeated pair keeps its last score, as there
            return relevant

    return ColumnsQrelsLoader


class QrelsInOnePass:
    """Mixin for retrieval and reranking tasks in mteb's own layout: their qrels are read in one pass.

    mteb's loader groups the qrels with polars and builds each query's dict from its group, a small
    DataFrame per query: at full size 47,760 queries, 12 s of a 31 s cold start on 2 CPU cores (profiled;
    `bench/startup.py` on the full-size mirror). The same dict is built here from the qrels' columns read
    in one slice: the same queries with the same documents, in row order, and scores. Only the order of the
    queries differs: mteb's is polars' group order, which polars leaves unspecified and nothing reads.
    mteb's task builds its loader by name in `mteb.abstasks.retrieval`, so that name points at the loader
    above while this task loads (and only then: a plain mteb task keeps mteb's own).
    """

    def load_data(self, *args: Any, **kwargs: Any) -> None:
        with _retrieval_loader(_qrels_loader()):
            super().load_data(*args, **kwargs)  # type: ignore[misc]


@contextmanager
def _retrieval_loader(loader: type) -> Iterator[None]:
    from mteb.abstasks import retrieval

    mtebs = retrieval.RetrievalDatasetLoader
    retrieval.RetrievalDatasetLoader = loader
    try:
        yield
    finally:
        retrieval.RetrievalDatasetLoader = mtebs


class SlicedRelevanceEvaluator:
    """pytrec_eval's `RelevanceEvaluator`, its `evaluate(run)` called on slices of the run's queries of about
    PYTREC_SLICE_PAIRS query-document pairs each: the same scores in the same order (see `PytrecInSlices`)."""

    def __init__(self, qrels: Any, measures: Any, *args: Any, **kwargs: Any) -> None:
        import pytrec_eval

        self._evaluator = pytrec_eval.RelevanceEvaluator(qrels, measures, *args, **kwargs)

    def evaluate(self, run: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        """Per-query scores of `run`, as `RelevanceEvaluator.evaluate(run)` gives them."""
        scores: dict[str, dict[str, float]] = {}
        for part in self.slices(run):
            scores.update(self._evaluator.evaluate(part))
        return scores

    @staticmethod
    def slices(run: dict[str, dict[str, float]]) -> Iterator[dict[str, dict[str, float]]]:
        """`run` cut, in its order, into runs of at least PYTREC_SLICE_PAIRS query-document pairs (the last
        fewer), each ending with the query that reached it."""
        part: dict[str, dict[str, float]] = {}
        pairs = 0
        for query, documents in run.items():
            part[query] = documents
            pairs += len(documents)
            if pairs >= PYTREC_SLICE_PAIRS:
                yield part
                part, pairs = {}, 0
        if part:
            yield part


class PytrecInSlices:
    """Mixin for retrieval and reranking tasks: pytrec_eval scores their run a slice of queries at a time.

    pytrec_eval's `evaluate` is C++ that holds the GIL for the whole call, so every other thread of the
    process stops until it returns: at full size T2Retrieval's 22.8 million query-document pairs held it for
    about 35 s, in which the thread encoding the next task's texts could launch nothing and the GPU sat idle
    (one H200, `nvidia-smi dmon`). Between slices the other threads run. Each query's measures depend on that
    query alone, and the scores come back in the run's order, as from one call, so mteb averages the same
    numbers in the same order. mteb's scoring finds pytrec_eval by its name in
    `mteb._evaluators.retrieval_metrics`; the name points at the sliced evaluator while this task evaluates
    (and only then: a plain mteb task keeps pytrec_eval's own).
    """

    def _evaluate_subset(self, *args: Any, **kwargs: Any) -> Any:
        with _sliced_pytrec_eval():
            return super()._evaluate_subset(*args, **kwargs)  # type: ignore[misc]


@contextmanager
def _sliced_pytrec_eval() -> Iterator[None]:
    from types import SimpleNamespace

    from mteb._evaluators import retrieval_metrics

    pytrec_eval = retrieval_metrics.pytrec_eval
    retrieval_metrics.pytrec_eval = SimpleNamespace(RelevanceEvaluator=SlicedRelevanceEvaluator)
    try:
        yield
    finally:
        retrieval_metrics.pytrec_eval = pytrec_eval
