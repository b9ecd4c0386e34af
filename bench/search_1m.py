"""`make bench-search`: exact search over a 1,000,000-passage corpus within bounded memory.

Runs the chunked exact search `cmteb run` uses (`cmteb/runner/search.py`: mteb's chunks and
per-chunk top k, merged by torch; cmteb's corpus chunk rule) over 1M documents and 2,000 queries,
then mteb's own `chunked_full_corpus_search` (a Python heap merge) on the same vectors, and
checks both keep the same documents with the same scores for every query. The vectors are
random unit vectors of the bundled model's width (512), drawn per chunk from a fixed seed, since
encoding 1M texts on a CPU takes hours; search memory does not depend on where the vectors come
from. Prints wall times, the chunk size, the largest score block, the peak resident memory, and
whether the top 10 of 50 queries equal an exhaustive search (one full query x corpus product, done
only for those 50): the same documents with the same scores, to 1e-6.
Figures only: nothing here asserts a time. T2Retrieval's size and width 768:
`python bench/search_1m.py --docs 118605 --queries 22812 --dim 768`.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

import mteb
import numpy as np
import torch
from datasets import Dataset
from mteb.models.search_wrappers import chunked_full_corpus_search

from cmteb.runner.evaluate import corpus_chunk_size
from cmteb.runner.search import chunked_search

TOP_K, CHECKED = 1000, 50


def unit_vectors(n: int, dim: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((n, dim), dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def search(function, corpus: Dataset, queries: np.ndarray, dim: int) -> tuple[dict, float]:
    """Run one chunked search function (mteb's or cmteb's) on the problem; its results and wall seconds."""
    chunk = corpus_chunk_size(len(queries))

    def encode_chunk(loader, **kwargs) -> np.ndarray:
        first = int(loader.dataset[0]["id"][1:])  # chunks are contiguous: seed by their first document
        return unit_vectors(len(loader.dataset), dim, seed=1 + first)

    started = time.perf_counter()
    results = function(
        task_corpus=corpus,
        corpus_chunk_size=chunk,
        query_idx_to_id={i: f"q{i}" for i in range(len(queries))},
        query_embeddings=queries,
        task_metadata=mteb.get_task("T2Retrieval").metadata,
        hf_subset="default",
        hf_split="dev",
        top_k=TOP_K,
        encode_kwargs={"batch_size": 32, "show_progress_bar": False},
        encode_fn=encode_chunk,
        similarity_fn=lambda a, b: torch.as_tensor(a) @ torch.as_tensor(b).T,
        search_k_offset=1,
    )
    return results, time.perf_counter() - started


def exhaustive_check(results: dict, queries: np.ndarray, n_docs: int, dim: int) -> bool:
    """The top 10 of the first 50 queries against one full query x corpus product."""
    chunk = corpus_chunk_size(len(queries))
    everything = np.concatenate(
        [unit_vectors(min(chunk, n_docs - s), dim, seed=1 + s) for s in range(0, n_docs, chunk)]
    )
    scores = queries[:CHECKED] @ everything.T
    exact = np.argsort(-scores, axis=1)[:, :10]
    equal = True
    for i in range(CHECKED):  # same documents, same scores (numpy and torch may order a 1e-8 tie apart)
        found = sorted(results[f"q{i}"], reverse=True)[:10]
        same_docs = {d for _, d in found} == {f"d{j}" for j in exact[i]}
        same_scores = np.allclose([v for v, _ in found], scores[i, exact[i]], atol=1e-6)
        equal = equal and same_docs and same_scores
    return equal


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=2_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--skip-mteb", action="store_true", help="time cmteb's search only")
    args = parser.parse_args()
    corpus = Dataset.from_dict({"id": [f"d{i}" for i in range(args.docs)], "text": [""] * args.docs})
    queries = unit_vectors(args.queries, args.dim, seed=0)
    chunk = corpus_chunk_size(args.queries)
    print(f"exact search: {args.docs:,} passages x {args.queries:,} queries, dim {args.dim}, top {TOP_K}")
    print(f"corpus chunk {chunk:,} documents; largest score block {args.queries * chunk * 4 / 2**20:.0f} MiB")
    ours, wall = search(chunked_search, corpus, queries, args.dim)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"cmteb (torch merge): wall {wall:.1f} s; peak resident memory {peak_mb:.0f} MB")
    same = True
    if not args.skip_mteb:
        theirs, mteb_wall = search(chunked_full_corpus_search, corpus, queries, args.dim)
        same = all(sorted(ours[q]) == sorted(heap) for q, heap in theirs.items())
        print(f"mteb (heap merge): wall {mteb_wall:.1f} s; ratio cmteb / mteb {wall / mteb_wall:.3f}")
        print(f"same documents and scores for every query as mteb's: {'yes' if same else 'NO (FAIL)'}")
    equal = exhaustive_check(ours, queries, args.docs, args.dim)
    print(f"top 10 of {CHECKED} queries equal to exhaustive search: {'yes' if equal else 'NO (FAIL)'}")
    return 0 if equal and same else 1


if __name__ == "__main__":
    sys.exit(main())
