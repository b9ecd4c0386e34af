"""The cross-lingual reranking tasks of the FlagEmbedding reranking table, as mteb 2 tasks.

mteb 2 does not define T2RerankingZh2En / T2RerankingEn2Zh. Their hub repos keep the mteb 1
reranking layout (one row per query: `query`, `positive` list, `negative` list); this module
reads that layout (`cmteb.tasks.layouts`), so mteb's retrieval evaluator scores them like
T2Reranking.
"""

from __future__ import annotations

from typing import Any

from mteb.abstasks.retrieval import AbsTaskRetrieval
from mteb.tasks.reranking.zho.cmteb_reranking import T2Reranking

from cmteb.tasks.layouts import Mteb1RerankingLayout

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


class _MtebV1RerankingTask(Mteb1RerankingLayout, AbsTaskRetrieval):
    """A reranking task whose dataset is in the mteb 1 layout."""


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
