"""What the published C-MTEB table's averages cover (protocol flagembedding-2023), checked on its own numbers.

c-mteb 1.1.1 prints 35 tasks per model: the 31 plus STS22 (zh), AmazonReviewsClassification (zh),
MassiveIntentClassification (zh-CN) and MassiveScenarioClassification (zh-CN).
"""

from __future__ import annotations

import pytest

from cmteb.protocols import get_protocol
from cmteb.reference import load_reference
from cmteb.registry import TASK_TYPES, load_registry

MULTILINGUAL = {"STS22", "AmazonReviewsClassification", "MassiveIntentClassification", "MassiveScenarioClassification"}
SOURCE_TYPO = ("intfloat/multilingual-e5-large", "PairClassification")  # see the reference file


def _rows():
    published = load_reference()
    categories = {r.model: r.categories for r in published if "Avg" in r.categories}
    per_task: dict[str, dict[str, float]] = {}
    for r in published:
        if r.task_type and r.source.startswith("c-mteb"):
            per_task.setdefault(r.model, {}).update(r.tasks)
    return categories, per_task


def test_per_task_tables_cover_the_35_tasks_of_the_protocol():
    _, per_task = _rows()
    protocol_tasks = {t.name for t in get_protocol("flagembedding-2023").tasks}
    assert len(protocol_tasks) == 35 and protocol_tasks - {t.name for t in load_registry().tasks} == MULTILINGUAL
    assert len(per_task) == 13
    assert all(set(tasks) == protocol_tasks for tasks in per_task.values())


def test_category_columns_are_means_over_all_35_tasks():
    categories, per_task = _rows()
    by_type = {
        kind: [t.name for t in get_protocol("flagembedding-2023").tasks if t.type == kind] for kind in TASK_TYPES
    }
    assert len(by_type["STS"]) == 8 and len(by_type["Classification"]) == 9
    for model, tasks in per_task.items():
        for kind, names in by_type.items():
            if (model, kind) == SOURCE_TYPO:
                continue
            mean = sum(tasks[n] for n in names) / len(names)
            assert mean == pytest.approx(categories[model][kind], abs=0.006), (model, kind)


def test_avg_of_the_older_rows_is_the_mean_over_31_tasks():
    categories, per_task = _rows()
    for model, tasks in per_task.items():
        over_31 = [v for name, v in tasks.items() if name not in MULTILINGUAL]
        over_35 = list(tasks.values())
        assert sum(over_31) / 31 == pytest.approx(categories[model]["Avg"], abs=0.006), model
        assert abs(sum(over_35) / 35 - categories[model]["Avg"]) > 0.006, model


def test_avg_of_the_v15_rows_is_the_mean_over_35_tasks():
    """No per-task tables exist for them; their Avg equals the 35-task mean of their category columns."""
    categories, _ = _rows()
    weights_35 = {
        "Retrieval": 8,
        "STS": 8,
        "PairClassification": 2,
        "Classification": 9,
        "Reranking": 4,
        "Clustering": 4,
    }
    weights_31 = {**weights_35, "STS": 7, "Classification": 6}
    for model in ("BAAI/bge-large-zh-v1.5", "BAAI/bge-base-zh-v1.5", "BAAI/bge-small-zh-v1.5"):
        row = categories[model]
        mean_35 = sum(row[k] * w for k, w in weights_35.items()) / 35
        mean_31 = sum(row[k] * w for k, w in weights_31.items()) / 31
        assert mean_35 == pytest.approx(row["Avg"], abs=0.006), model
        assert abs(mean_31 - row["Avg"]) > 0.15, model
