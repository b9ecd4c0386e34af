"""A task's outcome as it is recorded: its files, its run-record entry, its store entry, and what a later run
trusts of them. Each function on its own, with a real plan of the bundled model on the samples (no weights are
read); tests/test_runner.py and tests/test_integrity.py check the same through whole runs."""

from __future__ import annotations

import json
import platform
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import mteb
import pandas as pd
import pytest
from mteb.results import TaskResult
from results_fixtures import mteb2_result

from cmteb.assets import SAMPLES_DIR
from cmteb.errors import CmtebError
from cmteb.results.files import CHECKSUMS, MODEL_META, REWRITING, RUN_RECORD, file_checksums, read_run_record
from cmteb.results.items import items_path
from cmteb.results.probe import probe_path, read_probe
from cmteb.runner import record as record_module
from cmteb.runner.config import resolve_config
from cmteb.runner.plan import Plan, make_plan
from cmteb.runner.record import (
    RECORDED_PACKAGES,
    Evaluation,
    check_writable,
    is_current,
    matches,
    prepare_task_files,
    record_task,
    result_path,
    reuse,
    task_files,
    write_evaluated,
)
from cmteb.tasks.qrel_gaps import QrelGaps

SCORES = {"validation": {"cosine_spearman": 0.41}, "test": {"cosine_spearman": 0.52}}


def _utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _is_utc_now(stamp: str) -> bool:
    """A run-record time: UTC, to the second, written now."""
    when = datetime.fromisoformat(stamp)
    return (
        stamp.endswith("+00:00")
        and "." not in stamp
        and abs((when.replace(tzinfo=None) - _utc_now()).total_seconds()) < 60
    )


def _plan(tmp_path: Path, task: str = "ATEC", **options) -> Plan:
    config = resolve_config(
        "m3e-small", tasks=[task], data_dir=SAMPLES_DIR, output_dir=tmp_path / "out", cache_dir=tmp_path / "cache",
        show_progress=False, **options,
    )  # fmt: skip
    return make_plan(config)


def _write_result(path: Path, scores: dict = SCORES) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(mteb2_result("ATEC", scores)), encoding="utf-8")
    return path


def test_an_output_folder_is_made_and_one_that_cannot_be_written_is_refused(tmp_path):
    folder = tmp_path / "a" / "b"
    check_writable(folder)
    check_writable(folder)  # an existing folder is fine
    assert folder.is_dir() and list(folder.iterdir()) == []  # the probe file is gone
    (tmp_path / "file").write_text("", encoding="utf-8")
    with pytest.raises(CmtebError) as err:
        check_writable(tmp_path / "file" / "results")
    assert (
        str(err.value) == f"cannot write results to {tmp_path / 'file' / 'results'} (Not a directory): "
        "pass a writable --output-dir"
    )


def test_a_result_file_is_named_after_the_task_mteb_ran(tmp_path):
    spec = _plan(tmp_path).config.protocol.get("ATEC")
    assert result_path(tmp_path, spec) == tmp_path / "ATEC.json"
    assert result_path(tmp_path, replace(spec, run_as="ATEC.v2")) == tmp_path / "ATEC.v2.json"
    assert task_files(tmp_path / "ATEC.json") == [
        tmp_path / "ATEC.json",
        tmp_path / "ATEC.items.parquet",
        tmp_path / "ATEC.probe.parquet",
    ]


def test_an_entry_matches_when_it_holds_every_field_of_the_key(tmp_path):
    path = _write_result(tmp_path / "ATEC.json")
    key = {"protocol": "cmteb-31", "settings": {"batch_size": 8}}
    assert matches(path, {**key, "seconds": 3.0}, key)
    assert not matches(path, {**key, "settings": {"batch_size": 16}}, key)
    assert not matches(path, {"protocol": "cmteb-31"}, key)
    assert not matches(tmp_path / "TNews.json", {**key}, key)  # no file


def test_a_matching_result_is_current_only_as_it_was_written(tmp_path, capsys):
    path = _write_result(tmp_path / "ATEC.json")
    key = {"protocol": "cmteb-31"}
    entry = {**key, CHECKSUMS: file_checksums([path])}
    assert is_current(path, entry, key) and capsys.readouterr().err == ""
    assert is_current(path, key, key)  # entries written before checksums: the file must parse
    assert not is_current(path, {"protocol": "other", CHECKSUMS: entry[CHECKSUMS]}, key)
    assert capsys.readouterr().err == ""  # another evaluation is no damage
    path.write_text(json.dumps(mteb2_result("ATEC", {"test": {"cosine_spearman": 0.9}})), encoding="utf-8")
    assert not is_current(path, entry, key)
    assert capsys.readouterr().err.strip() == (
        "cmteb: warning: ATEC: the existing result cannot be trusted (ATEC.json changed after it was written): it "
        "is evaluated again"
    )
    path.write_text("not json", encoding="utf-8")
    assert not is_current(path, key, key)
    assert "(ATEC.json does not parse as a result)" in capsys.readouterr().err


def test_the_run_record_gains_each_task_under_one_header(tmp_path):
    folder = tmp_path / "results" / "org__m" / "r1"  # not there yet
    record_task(folder, "ATEC", {"status": "ran"}, {"model": "org/m", "protocol": "cmteb-31"})
    record_task(folder, "TNews", {"status": "reused"}, {"model": "org/m2"})
    record = read_run_record(folder)
    assert record["tasks"] == {"ATEC": {"status": "ran"}, "TNews": {"status": "reused"}}
    assert (record["model"], record["protocol"]) == ("org/m2", "cmteb-31")
    assert record["python"] == platform.python_version()
    assert set(record["packages"]) <= set(RECORDED_PACKAGES) and {"cmteb", "mteb", "torch"} <= set(record["packages"])


@pytest.fixture()
def in_shanghai(monkeypatch):
    """The machine's clock set to UTC+8, as many of cmteb's users' are: the record's times stay UTC."""
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_a_damaged_run_record_is_kept_aside_and_a_new_one_started(tmp_path, capsys, in_shanghai):
    path = tmp_path / RUN_RECORD
    path.parent.mkdir(parents=True)
    path.write_text("{ cut sho", encoding="utf-8")
    orphan = path.parent / f".{path.name}.abc.tmp"  # what a writer killed mid-write leaves
    orphan.write_text("", encoding="utf-8")
    record_task(tmp_path, "ATEC", {"status": "ran"}, {})
    [aside] = [p for p in path.parent.iterdir() if ".damaged-" in p.name]
    assert aside.read_text(encoding="utf-8") == "{ cut sho" and not orphan.exists()
    stamp = aside.name.split(".damaged-")[1]
    assert len(stamp) == 15 and abs((datetime.strptime(stamp, "%Y%m%dT%H%M%S") - _utc_now()).total_seconds()) < 60
    assert f"the run record {path} could not be read: kept as {aside}, a new one is started" in capsys.readouterr().err
    assert read_run_record(tmp_path)["tasks"] == {"ATEC": {"status": "ran"}}


def test_files_about_to_be_rewritten_mark_their_entry_and_lose_orphaned_temps(tmp_path, in_shanghai):
    path = _write_result(tmp_path / "ATEC.json")
    orphan = tmp_path / ".ATEC.items.parquet.x1.tmp"
    orphan.write_text("", encoding="utf-8")
    prepare_task_files(tmp_path, path, "ATEC")
    assert not orphan.exists() and not (tmp_path / RUN_RECORD).exists()  # nothing recorded: nothing to mark
    record_task(tmp_path, "ATEC", {"status": "ran"}, {})
    prepare_task_files(tmp_path, path, "ATEC")
    entry = read_run_record(tmp_path)["tasks"]["ATEC"]
    assert entry["status"] == "ran" and _is_utc_now(entry[REWRITING])
    record_task(tmp_path, "TNews", {"status": "ran"}, {})
    prepare_task_files(tmp_path, tmp_path / "TNews.json", "TNews")  # recorded, but no file of it left
    assert REWRITING not in read_run_record(tmp_path)["tasks"]["TNews"]


ITEM = {"split": "test", "subset": "default", "unit": "pair", "id": "0", "metric": "cosine", "value": 0.5, "label": 1.0}
PROBE = {"kind": "text", "key": "k0", "values": [0.25, -0.5]}


def _evaluation(header: dict | None = None, extra: dict | None = None, meta=None) -> Evaluation:
    return Evaluation(
        result=TaskResult.from_dict(mteb2_result("ATEC", SCORES)),
        extra=extra or {},
        seconds=1.23456,
        model_seconds=0.98765,
        texts=40,
        items=[ITEM],
        probe=[PROBE],
        qrel_gaps=QrelGaps(documents=2, queries=1),
        meta=meta,
        header=header or {"model": "moka-ai/m3e-small"},
        stats={"batches": 3},
        placement={"devices": ["cpu"]},
        embedding_dim=512,
    )


def test_an_evaluated_task_writes_its_result_its_entry_and_its_store_entry(tmp_path):
    plan = _plan(tmp_path)
    spec, folder = plan.config.protocol.get("ATEC"), plan.config.result_folder
    path = result_path(folder, spec)
    write_evaluated(plan, spec, folder, path, _evaluation(extra={"instructions_used": ["q"], "noise": 0.1}))
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["cmteb"] == {
        "protocol": plan.config.protocol.name,
        "dataset_repo": spec.repo,
        "qrels_repo": spec.qrels_repo,
        "splits": list(spec.splits),
        "metric": spec.metric,
        "data_source": "samples",
        "instructions_used": ["q"],
    }
    record = read_run_record(folder)
    entry = record["tasks"]["ATEC"]
    assert {k: entry[k] for k in plan.evaluation_key("ATEC")} == plan.evaluation_key("ATEC")
    assert entry["data_source"] == "samples" and entry["dataset_repo"] == spec.repo
    assert (entry["unknown_qrel_documents"], entry["unknown_qrel_queries"]) == (2, 1)
    assert (entry["seconds"], entry["model_seconds"], entry["texts_encoded"]) == (1.235, 0.988, 40)
    assert entry["noise"] == 0.1 and entry["devices"] == ["cpu"] and entry["blas_threads"] >= 1
    assert entry[CHECKSUMS] == file_checksums(task_files(path)) and _is_utc_now(entry["finished"])
    assert record["model"] == "moka-ai/m3e-small" and record["stats"] == {"batches": 3}
    stored = plan.store.get(plan.keys["ATEC"])
    assert stored.entry["record"] == entry and stored.entry["header"] == {"model": "moka-ai/m3e-small"}
    assert stored.entry["score"] == pytest.approx(plan.config.protocol.task_score(spec, {
        s: [{"cosine_spearman": v["cosine_spearman"]}] for s, v in SCORES.items()}))  # fmt: skip
    assert stored.entry["embedding_dim"] == 512
    assert stored.entry["files"] == ["ATEC.json", "ATEC.items.parquet", "ATEC.probe.parquet"]
    assert pd.read_parquet(items_path(path)).to_dict("records") == [ITEM]
    assert read_probe(path)["key"].tolist() == ["k0"] and len(entry[CHECKSUMS]) == 3


def test_the_first_result_brings_the_models_metadata_under_the_runs_name(tmp_path):
    plan = _plan(tmp_path, max_length=64)
    spec, folder = plan.config.protocol.get("ATEC"), plan.config.result_folder
    meta = mteb.get_model_meta("moka-ai/m3e-small")
    write_evaluated(plan, spec, folder, result_path(folder, spec), _evaluation(meta=meta))
    written = json.loads((folder / MODEL_META).read_text(encoding="utf-8"))
    assert (written["name"], written["revision"]) == (plan.config.system_name, plan.config.system_revision)
    assert written["experiment_kwargs"] == {"max_length": 64} and written["embed_dim"] == 512
    assert MODEL_META in plan.store.get(plan.keys["ATEC"]).entry["files"]


def test_a_classification_result_keeps_its_per_experiment_accuracies_as_items(tmp_path):
    plan = _plan(tmp_path, "TNews")
    spec, folder = plan.config.protocol.get("TNews"), plan.config.result_folder
    path = result_path(folder, spec)
    experiments = [{"accuracy": 0.5}, {"accuracy": 0.7}]
    scores = {"validation": {"accuracy": 0.6, "scores_per_experiment": experiments}}
    evaluation = replace(_evaluation(), result=TaskResult.from_dict(mteb2_result("TNews", scores)), items=[])
    write_evaluated(plan, spec, folder, path, evaluation)
    items = pd.read_parquet(items_path(path))
    assert items[["split", "unit", "id", "metric", "value"]].values.tolist() == [
        ["validation", "experiment", "0", "accuracy", 0.5],
        ["validation", "experiment", "1", "accuracy", 0.7],
    ]


@pytest.mark.parametrize("step", ["write_items", "atomic_write_bytes"])
def test_a_task_stopped_while_rewriting_its_files_says_so_in_its_entry(step, tmp_path, monkeypatch):
    """Evaluated again, or replaced by a stored result: a run stopped between the new files and the new entry
    leaves the old entry marked as being rewritten (not as files edited by hand)."""
    plan = _plan(tmp_path)
    spec, folder = plan.config.protocol.get("ATEC"), plan.config.result_folder
    path = result_path(folder, spec)
    write_evaluated(plan, spec, folder, path, _evaluation())
    stored = plan.stored("ATEC")
    monkeypatch.setattr(record_module, step, lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        if step == "write_items":
            write_evaluated(plan, spec, folder, path, _evaluation())
        else:
            reuse(plan, spec, folder, path, stored)
    assert _is_utc_now(read_run_record(folder)["tasks"]["ATEC"][REWRITING])


def test_without_the_cache_nothing_is_stored(tmp_path):
    plan = _plan(tmp_path, use_cache=False)
    spec, folder = plan.config.protocol.get("ATEC"), plan.config.result_folder
    write_evaluated(plan, spec, folder, result_path(folder, spec), _evaluation())
    assert plan.store is None and not (tmp_path / "cache" / "results").exists()
    assert "instructions_used" not in json.loads(result_path(folder, spec).read_text(encoding="utf-8"))["cmteb"]


def test_a_stored_result_is_reused_with_every_file_in_its_place(tmp_path, monkeypatch):
    plan = _plan(tmp_path)
    spec = plan.config.protocol.get("ATEC")
    source = tmp_path / "earlier"
    files = [_write_result(source / "ATEC.json"), source / "ATEC.items.parquet", source / "ATEC.probe.parquet"]
    files[1].write_bytes(b"items")
    files[2].write_bytes(b"probe")
    (source / MODEL_META).write_text('{"name": "moka-ai/m3e-small"}', encoding="utf-8")
    earlier = {"status": "ran", "seconds": 7.5, "texts_encoded": 40, "first_stage_score": 0.3}
    entry = {"record": earlier, "header": {"model": "moka-ai/m3e-small", "stats": {"batches": 3}}}
    plan.store.put(plan.keys["ATEC"], [*files, source / MODEL_META], entry)
    folder = plan.config.result_folder
    path = result_path(folder, spec)
    readings = [100.0]  # the start, then every later reading (a file lock reads the clock too)
    monkeypatch.setattr(record_module.time, "perf_counter", lambda: readings.pop(0) if readings else 100.23456)
    outcome = reuse(plan, spec, folder, path, plan.stored("ATEC"))
    assert path.read_bytes() == files[0].read_bytes()
    assert items_path(path).read_bytes() == b"items" and probe_path(path).read_bytes() == b"probe"
    assert (folder / MODEL_META).read_text(encoding="utf-8") == '{"name": "moka-ai/m3e-small"}'
    assert (outcome.spec, outcome.status, outcome.path, outcome.first_stage_score) == (spec, "reused", path, 0.3)
    assert outcome.seconds == pytest.approx(0.23456)
    assert outcome.score == pytest.approx(plan.config.protocol.task_score(spec, {
        s: [{"cosine_spearman": v["cosine_spearman"]}] for s, v in SCORES.items()}))  # fmt: skip
    record = read_run_record(folder)
    reused = record["tasks"]["ATEC"]
    assert reused["status"] == "ran" and reused["data_source"] == "samples"  # the stored entry, this run's data
    assert (reused["evaluated_seconds"], reused["texts_encoded"]) == (7.5, 0)
    assert reused["reused_result"] == plan.keys["ATEC"] and reused["seconds"] == 0.235
    assert _is_utc_now(reused["finished"])
    assert reused[CHECKSUMS] == file_checksums(task_files(path)) and len(reused[CHECKSUMS]) == 3
    assert record["stats"] == {"batches": 3} and record["model_argument"] == "m3e-small"
