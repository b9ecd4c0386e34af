"""The cross-lingual reranking tasks of the FlagEmbedding reranking table, as mteb 2 tasks.

mteb 2 does not define T2RerankingZh2En / T2RerankingEn2Zh. Their hub repos keep the mteb 1
reranking layout (one row per query: `query`, `positive` list, `negative` list); this module
reads that layout into mteb 2's reranking form (corpus, queries, qrels and each query's
candidate list as `top_ranked`), so mteb's retrieval evaluator scores them like T2Reranking.
"""

from __future__ import annotations

from typing import Any

from datasets import Dataset, load_dataset
from mteb.abstasks.retrieval import AbsTaskRetrieval
from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData
from mteb.tasks.reranking.zho.cmteb_reranking import T2Reranking

_DESCRIPTION = (
    "T2Ranking passage reranking, cross-lingual: {direction}. Built by C-MTEB from T2Reranking "
    "with machine translation; reported in the FlagEmbedding reranking table."
)


def _t2_metadata(name: str, repo: str, langs: list[str], direction: str) -> Any:
    return T2Reranking.metadata.model_copy(
        update={
            "name": name,
            "dataset": {"path": repo, "revision": "main"},
            "eval_langs": langs,
            "description": _DESCRIPTION.format(direction=direction),
            "reference": "https://github.com/FlagOpen/FlagEmbedding/tree/master/research/C_MTEB",
        }
    )


def reranking_rows_to_split(rows: Dataset) -> RetrievalSplitData:
    """Convert mteb 1 reranking rows (query, positive, negative) into mteb 2 retrieval split data.

    Each distinct passage text gets one corpus id; each query's candidates (positives then
    negatives) become its `top_ranked` list and its positives its qrels, as mteb 1 scored them.
    """
    doc_ids: dict[str, str] = {}

    def doc_id(text: str) -> str:
        if text not in doc_ids:
            doc_ids[text] = f"d{len(doc_ids)}"
        return doc_ids[text]

    queries, qrels, top_ranked = [], {}, {}
    for i, row in enumerate(rows):
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


class _MtebV1RerankingTask(AbsTaskRetrieval):
    """A reranking task whose dataset is in the mteb 1 layout."""

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


class T2RerankingZh2En(_MtebV1RerankingTask):
    """Chinese queries, English passages."""

    metadata = _t2_metadata(
        "T2RerankingZh2En", "C-MTEB/T2Reranking_zh2en", ["cmn-Hans", "eng-Latn"], "Chinese queries, English passages"
    )


class T2RerankingEn2Zh(_MtebV1RerankingTask):
    """English queries, Chinese passages."""

    metadata = _t2_metadata(
        "T2RerankingEn2Zh", "C-MTEB/T2Reranking_en2zh", ["eng-Latn", "cmn-Hans"], "English queries, Chinese passages"
    )


CROSSLINGUAL_TASKS: dict[str, type[AbsTaskRetrieval]] = {
    "T2RerankingZh2En": T2RerankingZh2En,
    "T2RerankingEn2Zh": T2RerankingEn2Zh,
}
