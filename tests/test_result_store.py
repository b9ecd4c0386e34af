"""The result store: a rerun that changes nothing copies stored results and loads no model or data."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from cmteb.models.encoder import BGEEncoder
from cmteb.results.files import read_run_record
from cmteb.runner import run

TASKS = ["ATEC", "TNews", "T2Retrieval"]


def _run(model, out, cache, data_dir, **kwargs):
    options = dict(tasks=TASKS, data_dir=data_dir, output_dir=out, cache_dir=cache, show_progress=False)
    return run(str(model), model_name="org/tiny", **{**options, **kwargs})


def _no_model(*args, **kwargs):
    raise AssertionError("the model was loaded")


def test_rerun_into_a_new_folder_reuses_results_without_loading_anything(tiny_bert, samples_dir, tmp_path, monkeypatch):
    cold = _run(tiny_bert, tmp_path / "a", tmp_path / "cache", samples_dir)
    assert {o.status for o in cold.outcomes} == {"ran"}
    monkeypatch.setattr(BGEEncoder, "load", _no_model)
    monkeypatch.setattr("cmteb.runner.systems.build_task", _no_model)  # where a run defines its tasks
    warm = _run(tiny_bert, tmp_path / "b", tmp_path / "cache", samples_dir)
    assert {o.status for o in warm.outcomes} == {"reused"}
    assert [o.score for o in warm.outcomes] == [o.score for o in cold.outcomes]
    for name in TASKS:
        a = json.loads((cold.output_dir / f"{name}.json").read_text(encoding="utf-8"))
        b = json.loads((warm.output_dir / f"{name}.json").read_text(encoding="utf-8"))
        assert a == b
        assert (warm.output_dir / f"{name}.items.parquet").is_file() or name == "TNews"
    record = read_run_record(warm.output_dir)["tasks"]
    assert all(record[n]["reused_result"] and record[n]["texts_encoded"] == 0 for n in TASKS)
    assert record["ATEC"]["settings"] == read_run_record(cold.output_dir)["tasks"]["ATEC"]["settings"]
    # The copy stands as a result of its own: a third run into the same folder skips every task.
    again = _run(tiny_bert, tmp_path / "b", tmp_path / "cache", samples_dir)
    assert {o.status for o in again.outcomes} == {"skipped"}
    # A fresh process answered by the store imports none of the heavy libraries: its start is the whole run.
    script = (
        "import sys\nfrom cmteb.runner import run\n"
        f"run({str(tiny_bert)!r}, model_name='org/tiny', tasks={TASKS!r}, data_dir={str(samples_dir)!r}, "
        f"output_dir={str(tmp_path / 'c')!r}, cache_dir={str(tmp_path / 'cache')!r}, show_progress=False, "
        "device='cpu')\n"
        "print(sorted(m for m in ('torch', 'transformers', 'mteb', 'datasets', 'pandas') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.split("\n")[-2] == "[]"
    assert all(any((tmp_path / "c").rglob(f"{name}.json")) for name in TASKS)


@pytest.mark.parametrize(
    "change",
    [
        {"max_length": 16},
        {"instruction": "查询："},
        {"protocol": "cmteb-31"},
        {"use_cache": False},
    ],
    ids=["max-length", "instruction", "protocol", "no-cache"],
)
def test_any_change_that_can_move_a_score_evaluates_again(change, tiny_bert, samples_dir, tmp_path):
    _run(tiny_bert, tmp_path / "a", tmp_path / "cache", samples_dir, tasks=["T2Retrieval"])
    again = _run(tiny_bert, tmp_path / "b", tmp_path / "cache", samples_dir, tasks=["T2Retrieval"], **change)
    assert [o.status for o in again.outcomes] == ["ran"]


def test_changed_data_is_evaluated_again_and_a_partial_hit_reuses_the_rest(tiny_bert, samples_dir, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(samples_dir, data)
    _run(tiny_bert, tmp_path / "a", tmp_path / "cache", data, tasks=["ATEC", "TNews"])
    atec = next(data.glob("C-MTEB/ATEC/data/test-*.parquet"))
    frame = pd.read_parquet(atec)
    frame["score"] = frame["score"].iloc[::-1].to_numpy()
    frame.to_parquet(atec)
    again = _run(tiny_bert, tmp_path / "b", tmp_path / "cache", data, tasks=["ATEC", "TNews"])
    assert {o.spec.name: o.status for o in again.outcomes} == {"ATEC": "ran", "TNews": "reused"}


def test_resume_and_the_store_use_one_evaluation_key(tiny_bert, samples_dir, tmp_path):
    """The run record's entry holds the evaluation key resume compares, and the store files the result under
    the hash of that same key; a change of a field of it (here a retrieval task's instructions) misses both,
    while tasks whose key the change leaves alone are reused."""
    from cmteb.runner.config import resolve_config
    from cmteb.runner.plan import make_plan

    out, cache = tmp_path / "out", tmp_path / "cache"
    _run(tiny_bert, out, cache, samples_dir)
    config = resolve_config(str(tiny_bert), model_name="org/tiny", tasks=TASKS, data_dir=samples_dir,
                            output_dir=out, cache_dir=cache, show_progress=False)  # fmt: skip
    plan = make_plan(config)
    entries = read_run_record(config.result_folder)["tasks"]
    for name in TASKS:
        key = plan.evaluation_key(name)
        assert {k: entries[name][k] for k in key} == key
        assert plan.keys[name] == plan.store.key(key) and (cache / "results" / plan.keys[name]).is_dir()
    again = _run(tiny_bert, out, cache, samples_dir, instruction="查询：")
    assert {o.spec.name: o.status for o in again.outcomes} == {
        "ATEC": "reused",
        "TNews": "reused",
        "T2Retrieval": "ran",
    }
