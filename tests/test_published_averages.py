"""What the published C-MTEB table's averages cover (protocol flagembedding-2023), checked on its own numbers.

c-mteb 1.1.1 prints 35 tasks per model: the 31 plus STS22 (zh), AmazonReviewsClassification (zh),
MassiveIntentClassification (zh-CN) and MassiveScenarioClassification (zh-CN).
"""

from __future__ import annotations

import pytest

from cmteb.report.averages import protocol_averages
from cmteb.report.reference import load_reference
from cmteb.tasks.protocols import resolve_protocol
from cmteb.tasks.registry import TASK_TYPES, load_registry

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
    protocol_tasks = {t.name for t in resolve_protocol("flagembedding-2023").tasks}
    assert len(protocol_tasks) == 35 and protocol_tasks - {t.name for t in load_registry().tasks} == MULTILINGUAL
    assert len(per_task) == 13
    assert all(set(tasks) == protocol_tasks for tasks in per_task.values())


def test_category_columns_are_means_over_all_35_tasks():
    categories, per_task = _rows()
    by_type = {
        kind: [t.name for t in resolve_protocol("flagembedding-2023").tasks if t.type == kind] for kind in TASK_TYPES
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


def _v15_rows():
    return {r.model: r for r in load_reference() if r.source.startswith("github.com/embeddings-benchmark/results")}


def test_v15_per_task_rows_record_their_source():
    rows = _v15_rows()
    assert sorted(rows) == ["BAAI/bge-base-zh-v1.5", "BAAI/bge-large-zh-v1.5", "BAAI/bge-small-zh-v1.5"]
    for row in rows.values():
        assert "at commit aa79a85c3" in row.source and "no_revision_available" in row.source
        assert row.protocol == "flagembedding-2023"
        assert set(row.tasks) == {t.name for t in resolve_protocol("flagembedding-2023").tasks}


def test_v15_per_task_files_reproduce_the_published_table():
    """The seed table's Avg and every category column, recomputed from the published per-task files."""
    categories, _ = _rows()
    protocol = resolve_protocol("flagembedding-2023")
    for model, row in _v15_rows().items():
        averages = protocol_averages(protocol, row.tasks)
        assert averages.avg.cell() == f"{categories[model]['Avg']:.2f}", model
        for kind in TASK_TYPES:
            assert averages.categories[kind].cell() == f"{categories[model][kind]:.2f}", (model, kind)


def test_v15_avg_is_the_35_task_mean_not_the_31_task_mean():
    categories, _ = _rows()
    over_31 = {}
    for model, row in _v15_rows().items():
        kept = [v for name, v in row.tasks.items() if name not in MULTILINGUAL]
        over_31[model] = round(sum(kept) / len(kept), 2)
        assert len(kept) == 31
        assert abs(over_31[model] - categories[model]["Avg"]) > 0.05, model
    assert over_31 == {"BAAI/bge-large-zh-v1.5": 64.66, "BAAI/bge-base-zh-v1.5": 63.21, "BAAI/bge-small-zh-v1.5": 57.59}
