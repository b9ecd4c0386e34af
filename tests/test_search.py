"""The exact search keeps the same documents with the same scores as mteb's heap-merged chunked search."""

from __future__ import annotations

import mteb
import numpy as np
import pytest
import torch
from datasets import Dataset
from mteb.models.search_wrappers import chunked_full_corpus_search

from cmteb.runner.search import chunked_search

N_DOCS, N_QUERIES, DIM = 60, 12, 8


def _problem(seed: int) -> tuple[Dataset, dict[str, np.ndarray], np.ndarray]:
    """A corpus with planted ties (documents sharing a vector, ids of mixed lengths) and its queries."""
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(N_DOCS, DIM)).astype(np.float32)
    for group in ([3, 17, 40, 41], [8, 9, 55], [20, 59]):  # equal scores across chunk boundaries
        vectors[group] = vectors[group[0]]
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [f"d{k}" if k % 3 else f"doc-{k:03d}" for k in range(N_DOCS)]
    corpus = Dataset.from_dict({"id": ids, "title": [""] * N_DOCS, "text": [f"t{k}" for k in range(N_DOCS)]})
    queries = rng.normal(size=(N_QUERIES, DIM)).astype(np.float32)
    queries[:4] = vectors[[3, 8, 20, 9]]  # queries whose best match is a tied group
    return corpus, {f"t{k}": vectors[k] for k in range(N_DOCS)}, queries


@pytest.mark.parametrize(("seed", "chunk", "top_k"), [(0, 7, 5), (1, 13, 10), (2, 60, 4), (3, 5, 59), (4, 11, 80)])
def test_same_documents_and_scores_as_mteb(seed, chunk, top_k):
    corpus, vector_of, queries = _problem(seed)

    def encode(loader, **kwargs):
        return np.stack([vector_of[text] for batch in loader for text in batch["text"]])

    def similarity(a, b):
        return torch.as_tensor(a) @ torch.as_tensor(b).T

    common = {
        "task_corpus": corpus,
        "corpus_chunk_size": chunk,
        "query_idx_to_id": {q: f"q{q}" for q in range(N_QUERIES)},
        "query_embeddings": queries,
        "task_metadata": mteb.get_task("T2Retrieval").metadata,
        "hf_subset": "default",
        "hf_split": "dev",
        "top_k": top_k,
        "encode_kwargs": {"batch_size": 4},
        "encode_fn": encode,
        "similarity_fn": similarity,
        "search_k_offset": 1,
    }
    theirs = chunked_full_corpus_search(**common)
    ours = chunked_search(**common)
    assert ours.keys() == theirs.keys()
    for qid, heap in theirs.items():
        assert sorted(ours[qid]) == sorted(heap), qid  # same (score, id) pairs, ties included
        assert ours[qid] == sorted(ours[qid], reverse=True), "best first"
    assert any(len(set(s for s, _ in heap)) < len(heap) for heap in theirs.values()), "the problem has ties"


@pytest.mark.parametrize("name", ["T2Retrieval", "T2Reranking"])
def test_exact_search_gives_mtebs_results_with_the_corpus_read_from_lists(name, samples_dir, monkeypatch):
    import warnings

    from mteb._create_dataloaders import _corpus_to_dict

    from cmteb.runner.search import ExactSearch
    from cmteb.tasks.build import build_task
    from cmteb.tasks.registry import load_registry

    def scores(model):
        task = build_task(load_registry().get(name), samples_dir)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = mteb.evaluate(model, task, cache=None, overwrite_strategy="always", show_progress_bar=False)
        return result.task_results[0].scores

    mapped, dataset_map = [], Dataset.map

    def counted_map(self, function=None, *args, **kwargs):
        mapped.append(function)
        return dataset_map(self, function, *args, **kwargs)

    monkeypatch.setattr(Dataset, "map", counted_map)
    model = mteb.get_model("mteb/baseline-random-encoder")  # an embedding per text, from the text's hash
    plain = scores(model)
    assert _corpus_to_dict in mapped, "plain mteb no longer maps documents through datasets: the view may be unneeded"
    mapped.clear()
    assert scores(ExactSearch(model, corpus_chunk_size=7)) == plain  # every metric, exactly
    assert _corpus_to_dict not in mapped
