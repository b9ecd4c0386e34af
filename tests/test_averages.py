"""One averaging rule: protocol_averages, and the summary, leaderboard and compare that use it."""

from __future__ import annotations

import re

import pytest
from rich.console import Console

from cmteb.report.averages import protocol_averages, task_points
from cmteb.report.compare import compare_averages, resolve_folder
from cmteb.report.leaderboard import build_rows, category_cells
from cmteb.report.summary import run_averages, summary_table
from cmteb.runner import run
from cmteb.tasks.protocols import resolve_protocol


def _all(protocol, value=50.0):
    return {t.name: value for t in protocol.tasks}


def test_avg_is_the_mean_over_the_protocols_tasks_and_extras_stay_out():
    protocol = resolve_protocol("mteb-cmn-v1")
    scores = _all(protocol)
    scores.update({t.name: 90.0 for t in protocol.tasks if t.type == "Retrieval"})
    scores.update({"T2RerankingZh2En": 0.0, "T2RerankingEn2Zh": 0.0})
    averages = protocol_averages(protocol, scores)
    assert averages.avg.value == pytest.approx((8 * 90 + 23 * 50) / 31)
    assert averages.categories["Reranking"].value == 50.0 and averages.categories["Reranking"].total == 4
    assert averages.extras == {"T2RerankingZh2En": 0.0, "T2RerankingEn2Zh": 0.0}


def test_a_partial_run_has_no_avg_but_says_how_much_it_covers():
    protocol = resolve_protocol("mteb-cmn-v1")
    averages = protocol_averages(protocol, {"ATEC": 40.0, "Ocnli": 60.0, "T2RerankingZh2En": 70.0})
    assert averages.avg.value is None and averages.avg.cell() == "partial: 2 of 31 tasks"
    assert averages.categories["STS"].cell() == "partial: 1 of 7 tasks"
    assert averages.categories["Retrieval"].cell() == "—"
    pair = protocol_averages(protocol, {"Ocnli": 60.0, "Cmnli": 70.0}).categories["PairClassification"]
    assert pair.cell() == "65.00"


def test_2023_rounds_each_task_before_averaging_over_35():
    protocol = resolve_protocol("flagembedding-2023")
    assert len(protocol.tasks) == 35
    scores = _all(protocol, 50.0)
    scores["T2Retrieval"] = 50.004  # rounds to 50.00
    scores["DuRetrieval"] = 50.006  # rounds to 50.01
    scores["ATEC"] = 50.006  # rounds to 50.01
    averages = protocol_averages(protocol, scores)
    # Rounded first: 50 + 0.02/35 = 50.000571...; unrounded it would be 50 + 0.016/35 = 50.000457...
    assert averages.avg.value == pytest.approx(50 + 0.02 / 35, abs=1e-12)
    assert averages.avg.value != pytest.approx(50 + 0.016 / 35, abs=1e-6)
    assert averages.categories["STS"].total == 8 and averages.categories["Classification"].total == 9
    assert task_points(protocol, 0.123456) == 12.35
    assert task_points(resolve_protocol("mteb-cmn-v1"), 0.123456) == pytest.approx(12.3456)


def test_cmteb_31_rounds_each_task_as_flagembeddings_summariser_does():
    """research/C_MTEB/summarize_results.py rounds every task to 2 decimals (points) before any mean."""
    protocol = resolve_protocol("cmteb-31")
    scores = _all(protocol, 50.0)
    scores.update({"T2Retrieval": 50.004, "DuRetrieval": 50.006, "ATEC": 50.006})
    averages = protocol_averages(protocol, scores)
    assert averages.avg.value == pytest.approx(50 + 0.02 / 31, abs=1e-12)  # unrounded: 50 + 0.016 / 31
    assert averages.categories["Retrieval"].value == pytest.approx(50 + 0.01 / 8, abs=1e-12)
    assert task_points(protocol, 0.123456) == 12.35


def test_categories_rule_is_the_mean_of_category_means():
    from dataclasses import replace

    protocol = resolve_protocol("mteb-cmn-v1")
    by_categories = replace(protocol, averaging=replace(protocol.averaging, avg="categories"))
    scores = {**_all(protocol), **{t.name: 90.0 for t in protocol.tasks if t.type == "Retrieval"}}
    averages = protocol_averages(by_categories, scores)
    assert averages.avg.value == pytest.approx((90 + 5 * 50) / 6)
    assert (averages.protocol, averages.avg.present, averages.avg.total) == ("mteb-cmn-v1", 31, 31)
    del scores["ATEC"]
    partial = protocol_averages(by_categories, scores)
    assert (partial.avg.value, partial.avg.present, partial.avg.total) == (None, 30, 31)
    assert partial.avg.cell() == "partial: 30 of 31 tasks" and partial.categories["STS"].value is None
    assert protocol_averages(by_categories, {}).avg.cell() == "—"
    assert task_points(protocol, None) is None and task_points(protocol, 0.123456) == pytest.approx(12.3456)


@pytest.mark.parametrize("protocol", ["mteb-cmn-v1", "cmteb-31", "flagembedding-2023"])
def test_summary_leaderboard_and_compare_print_the_same_averages(protocol, tiny_bert, samples_dir, tmp_path):
    tasks = ["ATEC", "BQ", "Ocnli", "Cmnli", "T2Reranking", "T2RerankingZh2En", "CLSClusteringS2S"]
    summary = run(
        str(tiny_bert), tasks=tasks, protocol=protocol, data_dir=samples_dir, output_dir=tmp_path, show_progress=False
    )
    [row] = build_rows([tmp_path], with_reference=False)
    cells = category_cells(row)
    averages = run_averages(summary)
    assert averages.avg.cell() == cells["Avg"] == f"partial: 6 of {len(resolve_protocol(protocol).tasks)} tasks"
    assert {k: a.cell() for k, a in averages.categories.items()} == {k: v for k, v in cells.items() if k != "Avg"}
    assert "partial" not in cells["PairClassification"]  # both pair tasks ran: a complete category
    assert "T2RerankingZh2En" in averages.extras
    assert "T2RerankingZh2En" not in {t.name for t in resolve_protocol(protocol).tasks}
    # compare reads each side's own folder: a second run of fewer tasks, whose averages differ.
    other = run(
        str(tiny_bert), tasks=tasks[:3], protocol=protocol, data_dir=samples_dir, output_dir=tmp_path / "fewer",
        show_progress=False,
    )  # fmt: skip
    [fewer_row] = build_rows([tmp_path / "fewer"], with_reference=False)
    base, cand = compare_averages(resolve_folder(summary.output_dir, None), resolve_folder(other.output_dir, None))
    assert base.avg.cell() == cells["Avg"] and cand.avg.cell() == category_cells(fewer_row)["Avg"] != cells["Avg"]
    assert base.categories["PairClassification"].cell() == cells["PairClassification"]
    assert cand.categories["PairClassification"].cell() == category_cells(fewer_row)["PairClassification"]
    console = Console(record=True, width=160)
    console.print(summary_table(summary))
    text = console.export_text()
    assert re.search(rf"mean +PairClassification +2 tasks +{cells['PairClassification']}", text)
    assert re.search(rf"Avg +C-MTEB +{cells['Avg'].removeprefix('partial: ')} +—", text), "partial: no number"
    lines = text.splitlines()
    extras_at = next(i for i, line in enumerate(lines) if line.strip() == "extras (in no average)")
    assert any("T2RerankingZh2En" in line for line in lines[extras_at:])
    assert not any("T2RerankingZh2En" in line for line in lines[:extras_at])


@pytest.mark.parametrize("two_stage", [False, True])
def test_the_run_summary_fits_80_columns_with_every_name_whole(two_stage, tmp_path):
    """The longest names (MassiveScenarioClassification, the flagembedding-2023 protocol) and every type."""
    from cmteb.results.outcome import RunSummary, TaskOutcome

    protocol = resolve_protocol("flagembedding-2023")
    # A two-stage run evaluates the Retrieval tasks; scores are fractions, shown in points.
    specs = [s for s in protocol.all_tasks if s.type == "Retrieval" or not two_stage]
    first_stage = 0.9876 if two_stage else None
    outcomes = [TaskOutcome(s, "skipped", 1.0, 1234.5, tmp_path / s.name, first_stage_score=first_stage) for s in specs]
    summary = RunSummary("org/model", "0123456789abcdef", tmp_path, 1024, outcomes, 456.7, protocol.name)
    console = Console(record=True, width=80)
    console.print(summary_table(summary))
    lines = console.export_text().splitlines()
    assert max(len(line) for line in lines) <= 80
    for spec in specs:
        assert any(line.split()[:1] == [spec.name] and line.rstrip().endswith("skipped") for line in lines), spec.name
    for kind in {spec.type for spec in specs if not protocol.is_extra(spec.name)}:
        assert any(line.strip() == kind for line in lines) and any(line.startswith(f" mean {kind} ") for line in lines)
