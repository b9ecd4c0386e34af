"""The bundled sample mirrors: one per registered task, in the hub layout, loadable by mteb."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from datasets import get_dataset_config_names

from cmteb.errors import CmtebError
from cmteb.tasks.build import build_task
from cmteb.tasks.mirror import mirror_path
from cmteb.tasks.protocols import load_protocols
from cmteb.tasks.registry import load_registry
from tools.build_samples import build_samples

#: One task per mirrored repo, over the registry and every protocol (their repos differ).
SPECS = tuple(
    {s.repo: s for s in (*load_registry().tasks, *(t for p in load_protocols().values() for t in p.tasks))}.values()
)


def test_every_registered_task_has_a_sample_mirror(samples_dir):
    for spec in SPECS:
        for repo_name, _ in spec.repos:
            repo = mirror_path(samples_dir, spec, repo_name)
            assert (repo / "README.md").is_file(), repo_name
            assert list(repo.rglob("*.parquet")), repo_name


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_sample_loads_through_mteb_with_official_name_and_revision(spec, samples_dir):
    task = build_task(spec, samples_dir)
    assert task.metadata.name == (spec.run_as or spec.name)
    assert task.metadata.dataset["revision"] == spec.revision
    assert task.metadata.dataset["path"] == str(samples_dir / spec.repo)
    task.load_data()
    data = task.dataset[spec.hf_subsets[0]] if spec.hf_subsets else task.dataset.get("default", task.dataset)
    split = spec.splits[0]
    if spec.type in ("Retrieval", "Reranking"):
        part = data[split]
        assert len(part["queries"]) >= (12 if spec.type == "Retrieval" else 10)
        if spec.type == "Retrieval":
            assert len(part["corpus"]) >= 60
        else:
            assert part["top_ranked"] and all(len(c) >= 2 for c in part["top_ranked"].values())
        corpus_ids = set(part["corpus"]["id"])
        assert all(set(docs) <= corpus_ids for docs in part["relevant_docs"].values())
    elif spec.type in ("STS", "PairClassification"):
        rows = data[split]
        n = len(rows["labels"][0]) if spec.type == "PairClassification" and len(rows) == 1 else len(rows)
        assert n >= 40
        if spec.type == "STS":
            assert min(rows["score"]) >= task.min_score and max(rows["score"]) <= task.max_score
    elif spec.type == "Classification":
        counts = Counter(data["train"]["label"]) + Counter(data[split]["label"])
        assert len(counts) >= 2 and min(counts.values()) >= 8
    elif spec.type == "Clustering":
        labels = [lab for row in data[split]["labels"] for lab in row]
        counts = Counter(labels)
        assert len(counts) >= 4 and min(counts.values()) >= 8


def test_retrieval_mirror_has_hub_configs(samples_dir):
    repo = samples_dir / "mteb" / "T2Reranking"
    assert set(get_dataset_config_names(str(repo))) == {"corpus", "queries", "default", "top_ranked"}
    assert (repo / "corpus" / "dev-00000-of-00001.parquet").is_file()
    assert (repo / "data" / "dev-00000-of-00001.parquet").is_file()


def test_samples_are_rebuilt_identically_from_source(tmp_path, samples_dir):
    build_samples(tmp_path)
    shipped = sorted(p.relative_to(samples_dir) for p in samples_dir.rglob("*.parquet"))
    rebuilt = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.parquet"))
    assert shipped == rebuilt
    for rel in shipped:
        pd.testing.assert_frame_equal(pd.read_parquet(samples_dir / rel), pd.read_parquet(tmp_path / rel))


def test_missing_mirror_names_the_path(tmp_path):
    spec = load_registry().get("T2Retrieval")
    with pytest.raises(CmtebError, match=str(Path(tmp_path) / "mteb" / "T2Retrieval")):
        build_task(spec, tmp_path)
