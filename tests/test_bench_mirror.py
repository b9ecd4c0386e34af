"""`make bench-full`'s synthetic mirror: each task at the published size, loadable by mteb, deterministic."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import mteb
import pytest

from cmteb.tasks.build import build_task
from cmteb.tasks.mirror import mirror_dataset_cache, mirror_fingerprint
from cmteb.tasks.registry import load_registry

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from full_mirror import build

SCALE = 0.004
TASKS = ["T2Retrieval", "T2Reranking", "ATEC", "Ocnli", "TNews", "CLSClusteringS2S"]


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("full-mirror")
    build(out, SCALE, TASKS, workers=1)
    return out


def _loaded(name: str, mirror: Path) -> tuple[dict, dict]:
    """The task's data as mteb loads it from the mirror, and the published statistics of its split."""
    spec = load_registry().get(name)
    task = build_task(spec, mirror)
    with mirror_dataset_cache(mirror_fingerprint(mirror, spec)):  # as cmteb loads a mirror: keyed on content
        task.load_data()
    stats = mteb.get_task(name).metadata.descriptive_stats[spec.splits[0]]
    return task.dataset.get("default", task.dataset)[spec.splits[0]], stats


def _mean_length(texts: list[str]) -> float:
    return sum(map(len, texts)) / len(texts)


def test_retrieval_and_reranking_have_the_published_counts_and_lengths(mirror):
    for name in ("T2Retrieval", "T2Reranking"):
        data, stats = _loaded(name, mirror)
        assert len(data["corpus"]) == round(stats["num_documents"] * SCALE)
        assert len(data["queries"]) == round(stats["num_queries"] * SCALE)
        mean = stats["documents_text_statistics"]["average_text_length"]
        assert _mean_length(data["corpus"]["text"]) == pytest.approx(mean, rel=0.2)
        corpus_ids = set(data["corpus"]["id"])
        assert all(docs and set(docs) <= corpus_ids for docs in data["relevant_docs"].values())
    ranked = stats["top_ranked_statistics"]["average_top_ranked_per_query"]
    assert all(len(c) == round(ranked) for c in data["top_ranked"].values())


def test_pairs_classification_and_clustering_have_the_published_counts(mirror):
    data, stats = _loaded("ATEC", mirror)
    assert len(data) == round(stats["num_samples"] * SCALE)
    assert _mean_length(data["sentence1"]) == pytest.approx(stats["text1_statistics"]["average_text_length"], rel=0.2)
    data, stats = _loaded("Ocnli", mirror)
    assert len(data["labels"][0]) == round(stats["num_samples"] * SCALE) and set(data["labels"][0]) == {0, 1}
    data, stats = _loaded("TNews", mirror)
    assert len(data) == round(stats["num_samples"] * SCALE)
    assert len(set(data["label"])) == stats["label_statistics"]["unique_labels"]
    data, stats = _loaded("CLSClusteringS2S", mirror)
    assert sum(len(row) for row in data["sentences"]) == round(stats["num_samples"] * SCALE)


def test_the_mirror_is_rebuilt_byte_for_byte(mirror, tmp_path):
    build(tmp_path, SCALE, TASKS[:3], workers=1)

    def digest(root: Path) -> dict[str, str]:
        return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*.parquet")}

    again = digest(tmp_path)
    assert again and again == {k: v for k, v in digest(mirror).items() if k in again}
