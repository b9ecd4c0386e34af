"""Deterministic subsamples of tasks, for quick CI checks (`cmteb run --subsample N`).

- Retrieval: N queries that have qrels, every document their qrels name, and a deterministic
  sample of the rest of the corpus (`corpus_extra` documents, default 20 x N).
- Reranking: N queries and every candidate document of theirs.
- STS, PairClassification, Classification (eval splits): N items; Clustering (each clustering run): N x its
  type's `quick_scale` (5) texts, since k-means on a few texts turns float noise into points.
The same N and data always give the same subsample; a result records its N, and `cmteb compare`
refuses to compare a subsampled result with a full one.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
from datasets import Dataset

from cmteb.columns import column_values
from cmteb.tasks.types import task_type


def _rng(*parts: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32("/".join(parts).encode("utf-8")))


def _pick(n_total: int, n: int, *seed: str) -> np.ndarray:
    """`n` of `range(n_total)`, chosen deterministically, in ascending order."""
    if n >= n_total:
        return np.arange(n_total)
    return np.sort(_rng(*seed).choice(n_total, size=n, replace=False))


def subsample_retrieval(split: dict[str, Any], n: int, corpus_extra: int, seed: str) -> dict[str, Any]:
    """Subsample one retrieval/reranking split (corpus, queries, relevant_docs, top_ranked)."""
    qrels = split["relevant_docs"]
    # Ids read in one slice each: iterating or indexing a `datasets` column formats it row by row.
    all_query_ids, corpus_ids = column_values(split["queries"], "id"), column_values(split["corpus"], "id")
    query_ids = [q for q in all_query_ids if q in qrels]
    chosen = [query_ids[i] for i in _pick(len(query_ids), n, seed, "queries")]
    chosen_set = set(chosen)
    keep_docs = {d for q in chosen for d in qrels[q]}
    top_ranked = split.get("top_ranked")
    if top_ranked:
        top_ranked = {q: docs for q, docs in top_ranked.items() if q in chosen_set}
        keep_docs |= {d for docs in top_ranked.values() for d in docs}
    else:
        rest = [i for i, d in enumerate(corpus_ids) if d not in keep_docs]
        extra = _pick(len(rest), corpus_extra, seed, "corpus")
        keep_docs |= {corpus_ids[rest[i]] for i in extra}
    return {
        **split,
        "corpus": split["corpus"].select([i for i, d in enumerate(corpus_ids) if d in keep_docs]),
        "queries": split["queries"].select([i for i, q in enumerate(all_query_ids) if q in chosen_set]),
        "relevant_docs": {q: qrels[q] for q in chosen},
        "top_ranked": top_ranked if top_ranked is not None else split.get("top_ranked"),
    }


def subsample_rows(data: Dataset, n: int, seed: str, list_columns: tuple[str, ...] = ()) -> Dataset:
    """N rows of `data`; a dataset holding one row of lists (mteb 1 layout) is subsampled inside the lists."""
    if (
        list_columns
        and all(c in data.column_names for c in list_columns)
        and len(data) >= 1
        and isinstance(data[0][list_columns[0]], list)
    ):
        rows = []
        for k, row in enumerate(data):
            idx = _pick(len(row[list_columns[0]]), n, seed, str(k))
            rows.append({**row, **{c: [row[c][i] for i in idx] for c in list_columns}})
        return Dataset.from_list(rows, features=data.features)
    return data.select(_pick(len(data), n, seed).tolist())


#: Columns that hold one list per row in the mteb 1 layouts (pair classification, clustering).
class Subsampled:
    """Task mixin: after loading, keep a deterministic subsample of every eval split."""

    subsample_n: int = 0
    subsample_corpus_extra: int = 0

    def load_data(self, *args: Any, **kwargs: Any) -> None:
        if self.data_loaded:
            return
        super().load_data(*args, **kwargs)
        n, name, kind = self.subsample_n, self.metadata.name, task_type(self.metadata.type)
        subsets = self.dataset if self._has_subsets() else {"default": self.dataset}
        for subset, splits in subsets.items():
            for split in self.eval_splits:
                if split not in splits:
                    continue
                seed = (name, subset, split)
                if kind.searches:
                    splits[split] = subsample_retrieval(splits[split], n, self.subsample_corpus_extra, "/".join(seed))
                else:
                    rows = n * kind.quick_scale
                    splits[split] = subsample_rows(splits[split], rows, "/".join(seed), kind.list_columns)

    def _has_subsets(self) -> bool:
        return "default" in self.dataset and isinstance(self.dataset["default"], dict)
