"""Exact retrieval search: mteb's chunked full-corpus search, with its per-query heap merge done by torch.

mteb's `chunked_full_corpus_search` encodes the corpus in chunks, takes each chunk's top k+1 per
query with `torch.topk`, and merges them into one heap of `(score, corpus_id)` tuples per query,
one Python `heappushpop` per candidate: for T2Retrieval (22,812 queries, 118,605 passages, chunks
sized to keep the score block within 1 GiB) about 250 million heap operations, over ten minutes of
the driver's time, longer than encoding the corpus on a GPU. Here the same chunks are encoded by
the same calls and cut by the same `torch.topk`, and the running top k of every query is kept in
two tensors, merged with each chunk's candidates by two stable sorts: score first, then corpus id
as the tuple comparison of the heap breaks ties. The result holds the same documents with the same
scores as mteb's heap for every query, ties included (`tests/test_search.py` checks it against mteb's
function); each query's list comes best first, where the heap's came in heap order.

The corpus and the queries are read from lists (`cmteb.columns.ColumnsInMemory`): mteb reads their ids
one row at a time and maps every document through `datasets` to standardise it, both on the driver,
about 0.2 ms a document on these machines.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from mteb._create_dataloaders import create_dataloader
from mteb.models.search_wrappers import SearchEncoderWrapper
from mteb.types import PromptType

from cmteb.columns import column_values, text_rows_in_memory


def merge_top_k(
    best: tuple[torch.Tensor, torch.Tensor], chunk: tuple[torch.Tensor, torch.Tensor], id_rank: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per query, the `k` largest (score, corpus id) of the running best and a chunk's candidates.

    Each pair is (scores, corpus positions), one row per query; `id_rank` orders corpus positions
    by their id as strings compare, so that equal scores keep the larger id, as mteb's heap does.
    """
    scores, positions = torch.cat([best[0], chunk[0]], dim=1), torch.cat([best[1], chunk[1]], dim=1)
    by_id = torch.argsort(id_rank[positions], dim=1, descending=True, stable=True)
    scores, positions = scores.gather(1, by_id), positions.gather(1, by_id)
    by_score = torch.argsort(scores, dim=1, descending=True, stable=True)[:, :k]
    return scores.gather(1, by_score), positions.gather(1, by_score)


def chunked_search(
    *,
    task_corpus: Any,
    corpus_chunk_size: int,
    query_idx_to_id: dict[int, str],
    query_embeddings: Any,
    top_k: int,
    encode_fn: Callable[..., Any],
    similarity_fn: Callable[[Any, Any], Any],
    encode_kwargs: dict[str, Any],
    search_k_offset: int = 0,
    num_proc: int | None = None,
    **where: Any,
) -> dict[str, list[tuple[float, str]]]:
    """mteb's `chunked_full_corpus_search` (same arguments, same encode calls, same documents and
    scores per query), merging chunks with `merge_top_k` instead of Python heaps; best first.

    `where` is mteb's task_metadata, hf_subset and hf_split, passed to `encode_fn` as mteb passes them.
    """
    ids = column_values(task_corpus, "id")
    order = {doc_id: rank for rank, doc_id in enumerate(sorted(set(ids)))}
    id_rank = torch.tensor([order[doc_id] for doc_id in ids], dtype=torch.long)
    best: tuple[torch.Tensor, torch.Tensor] | None = None
    for start in range(0, len(ids), corpus_chunk_size):
        sub_corpus = task_corpus.select(range(start, min(start + corpus_chunk_size, len(ids))))
        loader = create_dataloader(
            sub_corpus,
            task_metadata=where["task_metadata"],
            prompt_type=PromptType.document,
            batch_size=encode_kwargs.get("batch_size", 32),
            num_proc=num_proc,
        )
        embeddings = encode_fn(loader, prompt_type=PromptType.document, **where, **encode_kwargs)
        scores = torch.as_tensor(similarity_fn(query_embeddings, embeddings))
        values, positions = torch.topk(scores, min(top_k + search_k_offset, scores.shape[1]), dim=1, largest=True)
        chunk = (values.cpu(), positions.cpu() + start)
        best = merge_top_k(best or (chunk[0][:, :0], chunk[1][:, :0]), chunk, id_rank, top_k)
        del embeddings, scores
    if best is None:  # an empty corpus
        return {qid: [] for qid in query_idx_to_id.values()}
    values, positions = best[0].tolist(), best[1].tolist()
    return {
        qid: [(score, ids[p]) for score, p in zip(values[q], positions[q], strict=True)]
        for q, qid in query_idx_to_id.items()
    }


class ExactSearch(SearchEncoderWrapper):
    """mteb's `SearchEncoderWrapper` whose full-corpus search merges chunks with `chunked_search`;
    reranking (`top_ranked`), indexing and query encoding are mteb's own, on the corpus and queries read
    into lists."""

    def index(self, corpus: Any, *, task_metadata: Any, **kwargs: Any) -> None:
        corpus = text_rows_in_memory(corpus, task_metadata, PromptType.document)
        super().index(corpus, task_metadata=task_metadata, **kwargs)

    def search(self, queries: Any, *, task_metadata: Any, **kwargs: Any) -> Any:
        queries = text_rows_in_memory(queries, task_metadata, PromptType.query)
        return super().search(queries, task_metadata=task_metadata, **kwargs)

    def _full_corpus_search(self, **kwargs: Any) -> dict[str, list[tuple[float, str]]]:
        if self.task_corpus is None:
            raise ValueError("Corpus must be indexed before searching.")
        kwargs.pop("timer", None)
        return chunked_search(
            task_corpus=self.task_corpus,
            corpus_chunk_size=self.corpus_chunk_size,
            encode_fn=self.model.encode,
            # Scores stay where they were computed (a GPU): only each chunk's top candidates come back.
            similarity_fn=getattr(self.model, "scores_on_device", self.model.similarity),
            search_k_offset=1,  # as mteb's SearchEncoderWrapper asks of its chunked search
            **kwargs,
        )
