"""Readers for the hub layouts of 2023 that mteb 2 no longer reads.

- `mteb1-reranking`: one row per query with `query`, a `positive` list and a `negative` list
  (C-MTEB/T2Reranking, C-MTEB/Mmarco-reranking, C-MTEB/CMedQAv1-reranking, the cross-lingual
  T2Reranking repos). It becomes mteb 2's reranking form: corpus, queries, qrels and each query's
  candidate list as `top_ranked`, which mteb's retrieval evaluator scores.
- `cmteb-2023-retrieval`: `C-MTEB/<Task>` with the splits `corpus` and `queries` (`id`, `text`),
  and the qrels in a separate repo `C-MTEB/<Task>-qrels` (`qid`, `pid`, `score` per eval split),
  as c-mteb 1.1.1's `load_retrieval_data` reads them.

Both are mixins: placed before an mteb task class they replace only its `load_data`, so the
task keeps mteb's name, metadata and evaluator.
"""

from __future__ import annotations

from typing import Any, ClassVar

from datasets import Dataset, Value, load_dataset
from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData


def reranking_rows_to_split(rows: Dataset) -> RetrievalSplitData:
    """Convert mteb 1 reranking rows (query, positive, negative) into mteb 2 retrieval split data.

    Each distinct passage text gets one corpus id; each query's candidates (positives then
    negatives) become its `top_ranked` list and its positives its qrels, as mteb 1 scored them.
    A query without a positive or without a negative is left out, as mteb 1's RerankingEvaluator
    left it out (mteb 1.1.1, evaluation/evaluators/RerankingEvaluator.py lines 50-53); pytrec_eval
    would score a positive-only query AP = 1.
    """
    doc_ids: dict[str, str] = {}

    def doc_id(text: str) -> str:
        if text not in doc_ids:
            doc_ids[text] = f"d{len(doc_ids)}"
        return doc_ids[text]

    queries, qrels, top_ranked = [], {}, {}
    for i, row in enumerate(rows):
        if not row["positive"] or not row["negative"]:
            continue
        qid = f"q{i}"
        queries.append({"id": qid, "text": row["query"]})
        positives = [doc_id(t) for t in row["positive"]]
        negatives = [doc_id(t) for t in row["negative"]]
        qrels[qid] = {d: 1 for d in positives}
        top_ranked[qid] = list(dict.fromkeys(positives + negatives))
    corpus = Dataset.from_list([{"id": i, "title": "", "text": t} for t, i in doc_ids.items()])
    return RetrievalSplitData(
        corpus=corpus,
        queries=Dataset.from_list(queries),
        relevant_docs=qrels,
        top_ranked=top_ranked,
    )


class Mteb1RerankingLayout:
    """Mixin: read a reranking task from the mteb 1 rows layout."""

    def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
        """Load each eval split from the hub repo (or its local mirror) and convert it."""
        if self.data_loaded:
            return
        ds = self.metadata.dataset
        self.dataset = {"default": {}}
        for split in self.eval_splits:
            rows = load_dataset(ds["path"], revision=ds["revision"], split=split, num_proc=num_proc)
            self.dataset["default"][split] = reranking_rows_to_split(rows)
        self.data_loaded = True


def _string_ids(data: Dataset) -> Dataset:
    return data if data.features["id"].dtype == "string" else data.cast_column("id", Value("string"))


class Cmteb2023RetrievalLayout:
    """Mixin: read a retrieval task from `C-MTEB/<Task>` plus its `-qrels` repo.

    mteb 1 (and so the 2023 tables) dropped a retrieved document whose id equals the query's id
    (BEIR's `ignore_identical_ids`, on by default there); mteb 2 keeps it unless told.
    """

    qrels_dataset: ClassVar[dict[str, str]] = {}  # {"path", "revision"} of the qrels repo, set per task
    ignore_identical_ids = True

    def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
        """Load corpus, queries and qrels and build mteb 2's split data for each eval split."""
        if self.data_loaded:
            return
        ds = self.metadata.dataset
        texts = load_dataset(ds["path"], revision=ds["revision"], num_proc=num_proc)
        qrels = load_dataset(self.qrels_dataset["path"], revision=self.qrels_dataset["revision"], num_proc=num_proc)
        corpus, queries = _string_ids(texts["corpus"]), _string_ids(texts["queries"])
        self.dataset = {"default": {}}
        for split in self.eval_splits:
            relevant: dict[str, dict[str, int]] = {}
            for row in qrels[split]:
                relevant.setdefault(str(row["qid"]), {})[str(row["pid"])] = int(row["score"])
            self.dataset["default"][split] = RetrievalSplitData(
                corpus=corpus, queries=queries, relevant_docs=relevant, top_ranked=None
            )
        self.data_loaded = True


LAYOUT_MIXINS: dict[str, type] = {
    "mteb1-reranking": Mteb1RerankingLayout,
    "cmteb-2023-retrieval": Cmteb2023RetrievalLayout,
}
