"""`make bench-search`: exact search over a 1,000,000-passage corpus within bounded memory.

Runs mteb's chunked exact search (the one `cmteb run` uses, with cmteb's corpus chunk rule) over
1M documents and 2,000 queries. The vectors are random unit vectors of the bundled model's width
(512), drawn per chunk from a fixed seed, since encoding 1M texts on a CPU takes hours; search
memory does not depend on where the vectors come from. Prints wall time, the chunk size, the
largest score block, the peak resident memory, and whether the top 10 of 50 queries equal an
exhaustive search (one full query x corpus product, done only for those 50): the same
documents with the same scores, to 1e-6.
Figures only: nothing here asserts a time.
"""

from __future__ import annotations

import resource
import sys
import time

import mteb
import numpy as np
import torch
from datasets import Dataset
from mteb.models.search_wrappers import chunked_full_corpus_search

from cmteb.runner.evaluate import corpus_chunk_size

N_DOCS = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
N_QUERIES, DIM, TOP_K, CHECKED = 2_000, 512, 1000, 50


def unit_vectors(n: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((n, DIM), dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def main() -> int:
    corpus = Dataset.from_dict({"id": [f"d{i}" for i in range(N_DOCS)], "text": [""] * N_DOCS})
    queries = unit_vectors(N_QUERIES, seed=0)
    chunk = corpus_chunk_size(N_QUERIES)

    def encode_chunk(loader, **kwargs) -> np.ndarray:
        first = int(loader.dataset[0]["id"][1:])  # chunks are contiguous: seed by their first document
        return unit_vectors(len(loader.dataset), seed=1 + first)

    started = time.perf_counter()
    results = chunked_full_corpus_search(
        task_corpus=corpus,
        corpus_chunk_size=chunk,
        query_idx_to_id={i: f"q{i}" for i in range(N_QUERIES)},
        query_embeddings=queries,
        task_metadata=mteb.get_task("T2Retrieval").metadata,
        hf_subset="default",
        hf_split="dev",
        top_k=TOP_K,
        encode_kwargs={"batch_size": 32, "show_progress_bar": False},
        encode_fn=encode_chunk,
        similarity_fn=lambda a, b: torch.as_tensor(a) @ torch.as_tensor(b).T,
    )
    wall = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    # Exhaustive check: all 1M vectors at once, for the first 50 queries only.
    everything = np.concatenate([unit_vectors(min(chunk, N_DOCS - s), seed=1 + s) for s in range(0, N_DOCS, chunk)])
    scores = queries[:CHECKED] @ everything.T
    exact = np.argsort(-scores, axis=1)[:, :10]
    equal = True
    for i in range(CHECKED):  # same documents, same scores (numpy and torch may order a 1e-8 tie apart)
        found = sorted(results[f"q{i}"], reverse=True)[:10]
        same_docs = {d for _, d in found} == {f"d{j}" for j in exact[i]}
        same_scores = np.allclose([v for v, _ in found], scores[i, exact[i]], atol=1e-6)
        equal = equal and same_docs and same_scores
    print(f"exact search: {N_DOCS:,} passages x {N_QUERIES:,} queries, dim {DIM}, top {TOP_K}")
    print(f"corpus chunk {chunk:,} documents; largest score block {N_QUERIES * chunk * 4 / 2**20:.0f} MiB")
    print(f"wall {wall:.1f} s; peak resident memory {peak_mb:.0f} MB (before the exhaustive check)")
    print(f"top 10 of {CHECKED} queries equal to exhaustive search: {'yes' if equal else 'NO (FAIL)'}")
    return 0 if equal else 1


if __name__ == "__main__":
    sys.exit(main())
