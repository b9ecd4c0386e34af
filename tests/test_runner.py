"""`cmteb.run`: result files in mteb's layout, the run record, resume, overwrite, atomic writes."""

from __future__ import annotations

import json
import shutil

import pytest
from mteb.cache import ResultCache

from cmteb.errors import CmtebError
from cmteb.io import atomic_write_text
from cmteb.results.files import RUN_RECORD, read_run_record
from cmteb.runner import run

TASKS = ["ATEC", "T2Reranking"]


@pytest.fixture()
def first_run(tiny_bert, samples_dir, tmp_path):
    out = tmp_path / "results"
    summary = run(
        str(tiny_bert),
        tasks=TASKS,
        data_dir=samples_dir,
        output_dir=out,
        show_progress=False,
        model_name="test-org/tiny-bert",
        revision="r1",
    )
    return summary, out


def test_writes_mteb_layout_and_run_record(first_run):
    summary, out = first_run
    folder = out / "results" / "test-org__tiny-bert" / "r1"  # mteb's cache layout under the output folder
    assert summary.output_dir == folder
    assert sorted(p.name for p in folder.glob("*.json")) == ["ATEC.json", "T2Reranking.json", "model_meta.json"]
    assert (folder / RUN_RECORD).is_file() and RUN_RECORD == "cmteb/run.json"
    record = read_run_record(folder)
    assert record["model"] == "test-org/tiny-bert" and record["revision"] == "r1"
    assert record["precision"] == "fp32" and record["device"] == "cpu"
    assert set(record["packages"]) >= {"mteb", "torch", "transformers"}
    for name in TASKS:
        entry = record["tasks"][name]
        assert entry["texts_encoded"] > 0 and entry["seconds"] > 0
        assert 0 <= entry["model_seconds"] <= entry["seconds"], "time in the model's forward passes is the task's"
        assert entry["data_fingerprint"]
    rounding = 0.0005 * len(record["tasks"])  # each task's seconds are recorded to the millisecond
    assert sum(e["model_seconds"] for e in record["tasks"].values()) == pytest.approx(
        record["stats"]["encoder"]["seconds"], abs=rounding
    ), "each task's model seconds add up to the encoder's"
    assert "gpu_peak_memory_bytes" not in record["stats"], "no GPU was used"
    assert not list(folder.glob(".*.tmp")), "no temp files left behind"


def test_mteb_result_cache_reads_the_results(first_run):
    """The README's call, unfiltered: every task result loads, and nothing else is taken for one."""
    summary, out = first_run
    results = ResultCache(cache_path=out).load_results(include_remote=False)
    assert [(m.model_name, m.model_revision) for m in results.model_results] == [("test-org/tiny-bert", "r1")]
    loaded = {r.task_name: r.get_score() for m in results.model_results for r in m.task_results}
    assert loaded == pytest.approx({o.spec.name: o.result.get_score() for o in summary.outcomes}, abs=1e-6)


def test_resume_skips_finished_tasks_and_overwrite_reruns(first_run, tiny_bert, samples_dir):
    summary, out = first_run
    before = {p.name: p.stat().st_mtime_ns for p in summary.output_dir.glob("*.json")}
    again = run(
        str(tiny_bert),
        tasks=TASKS,
        data_dir=samples_dir,
        output_dir=out,
        show_progress=False,
        model_name="test-org/tiny-bert",
        revision="r1",
    )
    assert [o.status for o in again.outcomes] == ["skipped", "skipped"]
    assert [o.score for o in again.outcomes] == pytest.approx([o.score for o in summary.outcomes], abs=1e-6)
    assert (summary.output_dir / "ATEC.json").stat().st_mtime_ns == before["ATEC.json"]
    forced = run(
        str(tiny_bert),
        tasks=["ATEC"],
        data_dir=samples_dir,
        output_dir=out,
        show_progress=False,
        model_name="test-org/tiny-bert",
        revision="r1",
        overwrite=True,
    )
    assert [o.status for o in forced.outcomes] == ["ran"]


def test_changed_mirror_data_is_evaluated_again(first_run, tiny_bert, samples_dir, tmp_path):
    _, out = first_run
    mirror = tmp_path / "mirror"
    shutil.copytree(samples_dir / "C-MTEB" / "ATEC", mirror / "C-MTEB" / "ATEC")
    common = dict(
        tasks=["ATEC"],
        data_dir=mirror,
        output_dir=out,
        show_progress=False,
        model_name="test-org/tiny-bert",
        revision="r1",
    )
    # Same content as the first run's mirror: the result stands.
    first = run(str(tiny_bert), **common).outcomes[0]
    assert first.status == "skipped"
    import pandas as pd

    path = mirror / "C-MTEB" / "ATEC" / "data" / "test-00000-of-00001.parquet"
    frame = pd.read_parquet(path)
    frame["score"] = 1 - frame["score"]
    frame.to_parquet(path)
    rerun = run(str(tiny_bert), **common).outcomes[0]
    assert rerun.status == "ran"
    # Reversed scores reverse the Spearman correlation: the new data was read, not a cached copy.
    assert rerun.score == pytest.approx(-first.score, abs=1e-6)


def test_other_instruction_is_not_resumed(first_run, tiny_bert, samples_dir):
    _, out = first_run
    again = run(
        str(tiny_bert),
        tasks=["T2Reranking"],
        data_dir=samples_dir,
        output_dir=out,
        show_progress=False,
        model_name="test-org/tiny-bert",
        revision="r1",
        instruction="查询：",
    )
    assert again.outcomes[0].status == "ran"
    record = read_run_record(again.output_dir)
    used = record["tasks"]["T2Reranking"]["instructions_used"]
    assert used["query"] == "查询：" and used["document"] is None and used["source"] == "--instruction"


def test_atomic_write_keeps_old_file_when_writing_fails(tmp_path, monkeypatch):
    target = tmp_path / "result.json"
    target.write_text('{"old": true}')

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr("cmteb.io.os.replace", failing_replace)
    with pytest.raises(OSError):
        atomic_write_text(target, '{"new": true}')
    assert json.loads(target.read_text()) == {"old": True}
    assert list(tmp_path.iterdir()) == [target], "the temp file is removed"


def test_unwritable_output_dir_is_a_user_error(tiny_bert, samples_dir, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(CmtebError, match="cannot write results"):
        run(str(tiny_bert), tasks=["ATEC"], data_dir=samples_dir, output_dir=blocker / "results", show_progress=False)
