"""The task registry agrees with mteb's MTEB(cmn, v1) benchmark, so drift shows on upgrade."""

from __future__ import annotations

from collections import Counter

import mteb
import pytest

from cmteb.errors import CmtebError
from cmteb.tasks.registry import load_registry


@pytest.fixture(scope="module")
def registry():
    return load_registry()


def test_registry_matches_mteb_benchmark(registry):
    benchmark = mteb.get_benchmark(registry.benchmark)
    ours = {t.name: t for t in registry.tasks if t.in_mteb}
    theirs = {t.metadata.name: t for t in benchmark.tasks}
    assert set(ours) == set(theirs)
    for name, task in theirs.items():
        spec = ours[name]
        assert spec.type == task.metadata.type, name
        assert spec.repo == task.metadata.dataset["path"], name
        assert spec.revision == task.metadata.dataset["revision"], name
        assert list(spec.splits) == list(task.eval_splits), name
        assert spec.main_score == task.metadata.main_score, name


def test_registry_counts_31_cmteb_tasks_plus_two_crosslingual(registry):
    counts = Counter(t.type for t in registry.tasks if t.in_mteb)
    assert counts == {
        "Retrieval": 8,
        "STS": 7,
        "PairClassification": 2,
        "Classification": 6,
        "Reranking": 4,
        "Clustering": 4,
    }
    extra = [t for t in registry.tasks if not t.in_mteb]
    assert [(t.name, t.repo, t.splits, t.type) for t in extra] == [
        ("T2RerankingZh2En", "C-MTEB/T2Reranking_zh2en", ("dev",), "Reranking"),
        ("T2RerankingEn2Zh", "C-MTEB/T2Reranking_en2zh", ("dev",), "Reranking"),
    ]


def test_leaderboard_metrics_and_instruction_flags(registry):
    expected_metric = {
        "Retrieval": "ndcg_at_10",
        "STS": "cosine_spearman",
        "PairClassification": "cosine_ap",
        "Classification": "accuracy",
        "Reranking": "map_at_1000",
        "Clustering": "v_measure",
    }
    for spec in registry.tasks:
        assert spec.metric == expected_metric[spec.type], spec.name
        assert spec.instruction == (spec.type in ("Retrieval", "Reranking")), spec.name


def test_unknown_task_suggests_close_names(registry):
    with pytest.raises(CmtebError, match="T2Retrieval"):
        registry.get("T2Retreival")
    assert registry.get("t2retrieval").name == "T2Retrieval"


def test_select_by_type_and_unknown_type(registry):
    names = [t.name for t in registry.select(types=["sts"])]
    assert names == ["LCQMC", "PAWSX", "AFQMC", "QBQTC", "ATEC", "BQ", "STSB"]
    with pytest.raises(CmtebError, match="unknown task type"):
        registry.select(types=["Bitext"])
