"""The command line: listing tasks, a run end to end, and one-line errors with exit status 2."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cmteb.cli import main
from cmteb.tasks.protocols import resolve_protocol

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def cmteb(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the CLI in a fresh process, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "cmteb.cli", *args], capture_output=True, text=True, env=ENV, cwd=cwd, timeout=600
    )


def test_tasks_json_lists_the_31_and_the_extras_as_extras(capsys):
    assert main(["tasks", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 33
    assert [r["name"] for r in rows if not r["averaged"]] == ["T2RerankingZh2En", "T2RerankingEn2Zh"]
    assert {r["protocol"] for r in rows} == {"mteb-cmn-v1"}
    assert rows[0] == {
        **rows[0],
        "name": "T2Retrieval",
        "type": "Retrieval",
        "splits": ["dev"],
        "metric": "ndcg_at_10",
        "repo": "mteb/T2Retrieval",
    }


def test_tasks_without_protocol_lists_the_default_protocol(capsys):
    assert main(["tasks", "--json"]) == 0
    plain = capsys.readouterr().out
    assert main(["tasks", "--json", "--protocol", "mteb-cmn-v1"]) == 0
    assert capsys.readouterr().out == plain
    ocnli = next(r for r in json.loads(plain) if r["name"] == "Ocnli")
    assert ocnli["metric"] == "max_accuracy"  # mteb-cmn-v1's, not the registry's cosine_ap
    assert main(["tasks", "--type", "Reranking"]) == 0
    table = capsys.readouterr().out
    extras = [line.split()[0] for line in table.splitlines() if line.split()[-1:] == ["extra"]]
    assert extras == ["T2RerankingZh2En", "T2RerankingEn2Zh"] and "31 C-MTEB tasks, 2 extras" in table


def test_tasks_table_filters_by_type(capsys):
    assert main(["tasks", "--type", "PairClassification"]) == 0
    out = capsys.readouterr().out
    assert "Ocnli" in out and "Cmnli" in out and "T2Retrieval" not in out


def test_run_prints_summary_and_writes_results(tiny_bert, samples_dir, tmp_path):
    proc = cmteb(
        "run",
        "--model",
        str(tiny_bert),
        "--tasks",
        "ATEC",
        "Ocnli",
        "--data-dir",
        str(samples_dir),
        "--output-dir",
        str(tmp_path),
        "--no-progress",
    )
    assert proc.returncode == 0, proc.stderr
    assert "ATEC" in proc.stdout and "Ocnli" in proc.stdout and "protocol mteb-cmn-v1" in proc.stdout
    # Two of the 31 tasks: no Avg that looks comparable with a full run's.
    assert re.search(r"Avg +C-MTEB +2 of 31 tasks +—", proc.stdout), proc.stdout
    assert re.search(r"mean +STS +1 of 7 tasks +—", proc.stdout) and re.search(r"1 of 2 tasks +—", proc.stdout)
    assert len(list(tmp_path.rglob("ATEC.json"))) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tasks", "T2Retreival"], "unknown task 'T2Retreival' (did you mean T2Retrieval"),
        (["--types", "Bitext"], "unknown task type 'Bitext'"),
        (["--data-dir", "/nonexistent/mirror"], "--data-dir /nonexistent/mirror does not exist"),
        (["--model-name", "noslash"], "must look like org/name"),
        (["--cpu-streams", "0"], "--cpu-streams must be a positive number of passes, got 0"),
    ],
)
def test_bad_run_arguments_exit_2_with_one_line(tiny_bert, samples_dir, tmp_path, args, message, capsys):
    base = ["run", "--model", str(tiny_bert), "--output-dir", str(tmp_path / "out"), "--no-progress"]
    if "--data-dir" not in args:
        base += ["--data-dir", str(samples_dir)]
    assert main([*base, *args]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.startswith("cmteb: error: ") and err.count("\n") == 1


def test_model_path_errors_exit_2(tmp_path, samples_dir, capsys):
    (tmp_path / "no-weights").mkdir()
    (tmp_path / "no-weights" / "config.json").write_text('{"model_type": "bert"}')
    for model, message in [
        (str(tmp_path / "missing" / "model"), "does not exist"),
        (str(tmp_path / "no-weights"), "has no weights"),
    ]:
        code = main(
            [
                "run",
                "--model",
                model,
                "--tasks",
                "ATEC",
                "--data-dir",
                str(samples_dir),
                "--output-dir",
                str(tmp_path / "out"),
                "--no-progress",
            ]
        )
        assert code == 2 and message in capsys.readouterr().err


def test_data_dir_missing_a_task_exit_2_and_keeps_results(tiny_bert, samples_dir, tmp_path):
    out = tmp_path / "out"
    ok = cmteb(
        "run",
        "--model",
        str(tiny_bert),
        "--tasks",
        "ATEC",
        "--data-dir",
        str(samples_dir),
        "--output-dir",
        str(out),
        "--no-progress",
    )
    assert ok.returncode == 0, ok.stderr
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    partial = tmp_path / "partial"
    (partial / "C-MTEB").mkdir(parents=True)
    proc = cmteb(
        "run", "--model", str(tiny_bert), "--tasks", "ATEC", "--data-dir", str(partial), "--output-dir", str(out)
    )
    assert proc.returncode == 2
    assert f"expected the directory {partial / 'C-MTEB' / 'ATEC'}" in proc.stderr
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_unwritable_output_dir_exit_2(tiny_bert, samples_dir, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code = main(
        [
            "run",
            "--model",
            str(tiny_bert),
            "--tasks",
            "ATEC",
            "--data-dir",
            str(samples_dir),
            "--output-dir",
            str(blocker / "results"),
            "--no-progress",
        ]
    )
    assert code == 2 and "cannot write results" in capsys.readouterr().err


def test_debug_shows_the_traceback(samples_dir, tmp_path):
    proc = cmteb("--debug", "run", "--model", str(tmp_path / "missing" / "m"), "--data-dir", str(samples_dir))
    assert proc.returncode != 0 and "Traceback" in proc.stderr


@pytest.mark.parametrize("protocol", ["mteb-cmn-v1", "flagembedding-2023"])
def test_the_task_list_fits_80_columns_through_a_pipe_with_every_name_whole(protocol):
    done = subprocess.run(
        [sys.executable, "-m", "cmteb.cli", "tasks", "--protocol", protocol],
        capture_output=True,
        text=True,
        env={**ENV, "COLUMNS": "80"},
    )
    lines = done.stdout.splitlines()
    assert done.returncode == 0 and max(len(line) for line in lines) <= 80
    rows = {line.split()[0]: line.split()[1:] for line in lines if line.strip()}
    for spec in resolve_protocol(protocol).all_tasks:  # every cell whole, on the task's own line
        assert rows[spec.name][:2] == [",".join(spec.splits), spec.metric], spec.name
        assert spec.type in rows, "each type heads its tasks"
    assert "…" not in done.stdout


@pytest.mark.parametrize("command", [["families"], ["instructions", "--model", "m3e-small"]])
def test_the_family_and_instruction_listings_fit_80_columns_with_every_name_whole(command):
    from cmteb.models.families import CROSS_ENCODERS, FAMILIES, SENTENCE_TRANSFORMERS

    done = subprocess.run(
        [sys.executable, "-m", "cmteb.cli", *command], capture_output=True, text=True, env={**ENV, "COLUMNS": "80"}
    )
    lines = done.stdout.splitlines()
    assert done.returncode == 0 and max(len(line) for line in lines) <= 80
    cells = {cell.strip() for line in lines for cell in line.split("│")}
    if command == ["families"]:
        names = {family.name for family in (*FAMILIES, SENTENCE_TRANSFORMERS, CROSS_ENCODERS)}
    else:
        names = {spec.name for spec in resolve_protocol("mteb-cmn-v1").all_tasks}
    assert names <= cells, "every name whole, in a cell of its own"
