"""Crash safety, concurrent runs, the bad-input matrix, and verified offline mirrors."""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import torch
from model_builders import copy_sentence_transformers_files
from results_fixtures import write_model

from cmteb.cli import main
from cmteb.results.files import read_run_record
from cmteb.tasks.mirror import MANIFEST

HERE = Path(__file__).parent
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONPATH": str(HERE.parent)}
CRASH_TASKS = ["ATEC", "Ocnli", "T2Reranking", "TNews"]


def snapshot(folder: Path) -> dict[Path, bytes]:
    """Every file's bytes, lock files aside (they are empty and only coordinate runs)."""
    if not folder.exists():
        return {}
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.suffix != ".lock"}


def scores(folder: Path) -> dict[str, float]:
    """Main score per task of every (visible) result file; each must parse."""
    out = {}
    for path in folder.rglob("*.json"):
        if path.name.startswith(".") or path.name == "model_meta.json" or path.parent.name == "cmteb":
            continue  # the run record lives in cmteb/run.json
        data = json.loads(path.read_text())
        out[data["task_name"]] = data["scores"][next(iter(data["scores"]))][0]["main_score"]
    return out


def run_args(model: Path, data: Path, out: Path, cache: Path | None = None) -> list[str]:
    args = [
        "run",
        "--model",
        str(model),
        "--tasks",
        *CRASH_TASKS,
        "--data-dir",
        str(data),
        "--output-dir",
        str(out),
        "--batch-size",  # passes of 4 texts, whatever their length: enough batches to kill the run at
        "4",
        "--batch-tokens",
        "0",
        "--no-progress",
        "--model-name",
        "org/tiny",
    ]
    return [*args, "--cache-dir", str(cache)] if cache else args


@pytest.fixture(scope="module")
def reference_scores(tiny_bert, tmp_path_factory):
    from cmteb.assets import SAMPLES_DIR

    out = tmp_path_factory.mktemp("uninterrupted")
    assert main(run_args(tiny_bert, SAMPLES_DIR, out)) == 0
    return scores(out)


# --- crash safety ------------------------------------------------------------------------------


def test_kill_9_then_rerun_gives_the_uninterrupted_results(tiny_bert, samples_dir, tmp_path, reference_scores):
    rng = random.Random(1234)
    # Seeded random points inside the run: an encoded batch, and an atomic write caught between its temp file
    # and its rename (result files, items, probes, the run record, cache shards, store entries).
    kill_points = [("batches", rng.randint(1, 45)), ("writes", rng.randint(1, 20))]
    report = []
    for point, (kind, when) in enumerate(kill_points):
        out = tmp_path / f"{point}-{kind}-{when}"
        # A fresh embedding cache per kill point: the killed run must encode, and the rerun must
        # cope with whatever cache shards the kill left behind.
        args = run_args(tiny_bert, samples_dir, out, tmp_path / f"cache-{point}")
        proc = subprocess.run(
            [sys.executable, str(HERE / "kill_helper.py"), f"{kind}:{when}", *args],
            env=ENV,
            capture_output=True,
            timeout=300,
        )
        assert proc.returncode == -signal.SIGKILL, proc  # killed inside the run, never after its end
        before = scores(out)  # whatever finished before the kill parses
        assert main(args) == 0
        after = scores(out)
        assert after == reference_scores
        assert all(after[t] == v for t, v in before.items())
        report.append(f"{kind}={when}: {len(before)} tasks done before the kill, rerun equal")
    print("\n".join(report))


def _group_gone(pgid: int, within_s: float) -> bool:
    """Whether every process of group `pgid` (a run and its workers) ends within `within_s` seconds."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def _run_in_own_group(point: str, args: list[str]) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "kill_helper.py"), point, *args],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: Ctrl-C and the workers' end are watched on it alone
    )
    return proc, proc.pid


def test_ctrl_c_under_worker_processes_is_one_line_and_ends_every_worker(tiny_bert, samples_dir, tmp_path):
    args = [*run_args(tiny_bert, samples_dir, tmp_path / "out", tmp_path / "cache"), "--devices", "cpu,cpu"]
    proc, pgid = _run_in_own_group("interrupt-writes:8", args)  # Ctrl-C while the workers encode
    try:
        err = proc.communicate(timeout=300)[1].decode()
        assert proc.returncode == 130, err
        assert err.strip().splitlines() == [
            "cmteb: interrupted; finished tasks are saved, rerun the same command to resume"
        ], "one line: no worker prints a traceback"
        assert _group_gone(pgid, 5.0), "no worker outlives the run"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)


def test_workers_end_quietly_with_a_parent_killed_outright(tiny_bert, samples_dir, tmp_path):
    args = [*run_args(tiny_bert, samples_dir, tmp_path / "out", tmp_path / "cache"), "--devices", "cpu,cpu"]
    proc, pgid = _run_in_own_group("writes:8", args)
    try:
        proc.wait(timeout=300)
        assert proc.returncode == -signal.SIGKILL
        assert _group_gone(pgid, 5.0), "the workers end with their parent"
        err = proc.stderr.read().decode()  # the workers share the pipe: it closes once the last one ends
        assert "Traceback" not in err and "BrokenPipeError" not in err, err
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)


def test_a_rerun_killed_while_writing_reads_as_interrupted_and_the_next_run_cleans_up(
    tiny_bert, samples_dir, tmp_path, capsys
):
    out = tmp_path / "out"
    args = [*atec_run(tiny_bert, samples_dir, out), "--no-cache", "--no-progress"]
    assert main(args) == 0
    # --overwrite killed at its 6th write: the record marked, items, probe, result and metadata replaced, the
    # run record's temp file written and not yet renamed.
    proc = subprocess.run(
        [sys.executable, str(HERE / "kill_helper.py"), "writes:6", *args, "--overwrite"], env=ENV, capture_output=True
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    assert list(out.rglob(".run.json.*.tmp")), "the kill left the run record's temp file"
    capsys.readouterr()
    board = ["leaderboard", "--results", str(out), "--out", str(tmp_path / "board")]
    err = expect_error(board, "a rerun of ATEC stopped while writing its files", capsys)
    assert "changed after it was written" not in err
    assert main(args) == 0, "the same command finishes the rerun"
    assert not list(out.rglob("*.tmp")), "the temp files the kill left are gone"
    assert main(board) == 0


def test_two_runs_into_one_folder_compute_each_task_once(tiny_bert, samples_dir, tmp_path, reference_scores):
    out = tmp_path / "shared"
    # Its own cache: stored results of earlier tests would answer every task without computing it.
    args = [sys.executable, "-m", "cmteb.cli", *run_args(tiny_bert, samples_dir, out, tmp_path / "cache")]
    procs = [
        subprocess.Popen(args, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    ran = sum(len(re.findall(r" ran *$", stdout, re.M)) for stdout, _ in outputs)  # the summary's status column
    assert ran == len(CRASH_TASKS), "each task computed by exactly one of the two runs"
    assert scores(out) == reference_scores
    record = read_run_record(next(out.rglob("run.json")).parent.parent)
    assert set(record["tasks"]) == set(CRASH_TASKS)


# --- the bad-input matrix -------------------------------------------------------------------------


def atec_run(model: Path, data: Path, out: Path) -> list[str]:
    """`cmteb run` arguments for ATEC: the run most bad-input cases try."""
    return ["run", "--model", str(model), "--tasks", "ATEC", "--data-dir", str(data), "--output-dir", str(out)]


def expect_error(args: list[str], message: str, capsys, keep: Path | None = None) -> str:
    """Run the CLI: exit 2, one line naming the problem, nothing under `keep` changed."""
    before = snapshot(keep) if keep else {}
    if args[0] == "run":
        args = [*args, "--no-progress"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert err.startswith("cmteb: error: ") and err.count("\n") == 1 and "Traceback" not in err
    if keep:
        assert snapshot(keep) == before, "nothing in the output folder changed"
    return err


@pytest.fixture()
def out_with_results(tiny_bert, samples_dir, tmp_path):
    out = tmp_path / "out"
    assert (
        main(
            [
                "run",
                "--model",
                str(tiny_bert),
                "--tasks",
                "STSB",
                "--data-dir",
                str(samples_dir),
                "--output-dir",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    return out


def copy_mirror(samples_dir: Path, tmp_path: Path, repo: str) -> Path:
    target = tmp_path / "mirror"
    shutil.copytree(samples_dir / repo, target / repo)
    return target


def test_not_an_encoder(tmp_path, tiny_bert, out_with_results, samples_dir, capsys):
    from transformers import GPT2Config, GPT2LMHeadModel

    model_dir = tmp_path / "gpt2"
    GPT2LMHeadModel(GPT2Config(n_layer=1, n_head=2, n_embd=8, vocab_size=50)).save_pretrained(model_dir)
    expect_error(
        atec_run(model_dir, samples_dir, out_with_results),
        "no model family covers local/gpt2 (gpt2, no sentence-transformers files)",
        capsys,
        out_with_results,
    )
    # Asked to pool it anyway: a generator no family runs is still refused, before any weights are read.
    expect_error(
        [*atec_run(model_dir, samples_dir, out_with_results), "--pooling", "cls"],
        "is not a model cmteb runs this way",
        capsys,
        out_with_results,
    )


def test_tokenizer_missing(tmp_path, tiny_bert, out_with_results, samples_dir, capsys):
    model_dir = tmp_path / "no-tokenizer"
    model_dir.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_bert / name, model_dir / name)
    copy_sentence_transformers_files(tiny_bert, model_dir)
    expect_error(
        atec_run(model_dir, samples_dir, out_with_results),
        "has no usable tokenizer",
        capsys,
        out_with_results,
    )


def test_corrupt_parquet(tmp_path, tiny_bert, out_with_results, samples_dir, capsys):
    mirror = copy_mirror(samples_dir, tmp_path, "C-MTEB/ATEC")
    (mirror / "C-MTEB/ATEC/data/test-00000-of-00001.parquet").write_bytes(b"PAR1 this is not parquet")
    expect_error(
        atec_run(tiny_bert, mirror, out_with_results),
        "cannot load task ATEC from",
        capsys,
        out_with_results,
    )


def test_split_missing(tmp_path, tiny_bert, out_with_results, samples_dir, capsys):
    mirror = copy_mirror(samples_dir, tmp_path, "C-MTEB/ATEC")
    readme = mirror / "C-MTEB/ATEC/README.md"
    readme.write_text(readme.read_text().replace("  - split: test\n    path: data/test-*\n", ""))
    (mirror / "C-MTEB/ATEC/data/test-00000-of-00001.parquet").unlink()
    err = expect_error(
        atec_run(tiny_bert, mirror, out_with_results),
        "ATEC",
        capsys,
        out_with_results,
    )
    assert "test" in err


def test_empty_dataset(tmp_path, tiny_bert, out_with_results, samples_dir, capsys):
    mirror = copy_mirror(samples_dir, tmp_path, "C-MTEB/ATEC")
    path = mirror / "C-MTEB/ATEC/data/test-00000-of-00001.parquet"
    pd.read_parquet(path).iloc[:0].to_parquet(path)
    expect_error(
        atec_run(tiny_bert, mirror, out_with_results),
        "split 'test'",
        capsys,
        out_with_results,
    )


def test_qrels_naming_unknown_documents_or_queries_warn_and_count(tmp_path, tiny_bert, samples_dir, capsys):
    mirror = copy_mirror(samples_dir, tmp_path, "mteb/T2Retrieval")
    path = mirror / "mteb/T2Retrieval/data/dev-00000-of-00001.parquet"
    qrels = pd.read_parquet(path)
    first = qrels["query-id"][0]
    extra = pd.DataFrame(
        {"query-id": [first, first, "ghost"], "corpus-id": ["nope-1", "nope-2", qrels["corpus-id"][0]]}
    )
    extra["score"] = 1
    pd.concat([qrels, extra]).to_parquet(path)
    assert (
        main(
            [
                "run",
                "--model",
                str(tiny_bert),
                "--tasks",
                "T2Retrieval",
                "--data-dir",
                str(mirror),
                "--output-dir",
                str(tmp_path / "out"),
                "--no-progress",
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "T2Retrieval: 2 qrels name documents missing from the corpus" in err
    assert "T2Retrieval: 1 qrels name queries missing from the queries; mteb leaves those queries out" in err
    entry = read_run_record(next((tmp_path / "out").rglob("run.json")).parent.parent)["tasks"]["T2Retrieval"]
    assert (entry["unknown_qrel_documents"], entry["unknown_qrel_queries"]) == (2, 1)


def test_nan_embeddings(tmp_path, tiny_bert, out_with_results, samples_dir, capsys):
    from transformers import BertModel

    model = BertModel.from_pretrained(tiny_bert)
    with torch.no_grad():
        model.embeddings.word_embeddings.weight.fill_(float("nan"))
    broken = tmp_path / "nan-model"
    model.save_pretrained(broken)
    for name in ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.json"):
        if (tiny_bert / name).exists():
            shutil.copy(tiny_bert / name, broken / name)
    copy_sentence_transformers_files(tiny_bert, broken)
    expect_error(
        atec_run(broken, samples_dir, out_with_results),
        "NaN or inf embeddings",
        capsys,
        out_with_results,
    )


def test_remote_code_is_off_by_default(tmp_path, out_with_results, samples_dir, capsys):
    model_dir = tmp_path / "custom"
    model_dir.mkdir()
    (model_dir / "config.json").write_text(
        json.dumps(
            {
                "model_type": "my-custom-encoder",
                "auto_map": {"AutoConfig": "configuration_x.XConfig", "AutoModel": "modeling_x.XModel"},
            }
        )
    )
    (model_dir / "model.safetensors").write_bytes(b"")
    expect_error(
        atec_run(model_dir, samples_dir, out_with_results),
        "--trust-remote-code",
        capsys,
        out_with_results,
    )


MODELING_X = """from transformers import BertConfig, BertModel


class XConfig(BertConfig):
    pass


class XModel(BertModel):
    config_class = XConfig
"""


def test_a_stock_model_with_its_own_code_needs_the_flag_which_keys_its_results(
    tiny_bert, samples_dir, tmp_path, capsys
):
    """A BERT folder whose config maps AutoModel to code of its own: refused without --trust-remote-code (never
    run on the stock class); with it, that code runs and the flag is in the keys resume and the store use."""
    import sys

    model_dir = tmp_path / "custom"
    shutil.copytree(tiny_bert, model_dir)
    config = json.loads((model_dir / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "modeling_x.XConfig", "AutoModel": "modeling_x.XModel"}
    (model_dir / "config.json").write_text(json.dumps(config))
    (model_dir / "modeling_x.py").write_text(MODELING_X)
    out = tmp_path / "out"
    expect_error(atec_run(model_dir, samples_dir, out), "--trust-remote-code", capsys)
    assert not out.exists()
    assert main([*atec_run(model_dir, samples_dir, out), "--no-progress", "--trust-remote-code"]) == 0
    assert any(name.endswith("modeling_x") for name in sys.modules), "the model's own code ran"
    entry = read_run_record(next(out.rglob("run.json")).parent.parent)["tasks"]["ATEC"]
    assert entry["settings"]["trust_remote_code"] is True


@pytest.mark.parametrize("command", ["leaderboard", "model-card", "compare"])
def test_malformed_result_json(tmp_path, command, capsys):
    folder = write_model(tmp_path / "res", "org/m", "r1", {"ATEC": {"cosine_spearman": 0.5}})
    (folder / "BQ.json").write_text("{not json")
    args = {
        "leaderboard": ["leaderboard", "--results", str(tmp_path / "res"), "--out", str(tmp_path / "lb")],
        "model-card": [
            "model-card",
            "--results",
            str(tmp_path / "res"),
            "--model",
            "org/m",
            "--out",
            str(tmp_path / "README.md"),
        ],
        "compare": ["compare", str(folder), str(folder)],
    }[command]
    expect_error(args, "BQ.json is not valid JSON", capsys)


def test_out_of_memory_halves_the_batch_then_fails_clearly(tiny_bert, monkeypatch):
    from cmteb.errors import CmtebError
    from cmteb.models.encoder import BGEEncoder

    # The retry is a GPU's, where one pass runs at a time; a CPU's allocator failure is not "out of memory".
    encoder = BGEEncoder.load(str(tiny_bert), batch_size=8, cpu_streams=1)
    texts = ["一二三四五六七八九十"[: 1 + i % 10] for i in range(20)]
    expected = encoder.encode(texts)
    real_forward = encoder.model.forward
    sizes = []

    def small_memory(*args, **kwargs):
        batch = kwargs["input_ids"].shape[0]
        sizes.append(batch)
        if batch > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_forward(*args, **kwargs)

    monkeypatch.setattr(encoder.model, "forward", small_memory)
    got = encoder.encode(texts)
    assert sizes[:3] == [8, 4, 2] and max(sizes[3:]) == 2
    assert torch.allclose(torch.from_numpy(got), torch.from_numpy(expected), atol=1e-5)

    def no_memory(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(encoder.model, "forward", no_memory)
    with pytest.raises(CmtebError, match="out of memory on a single input"):
        encoder.encode(texts)


# --- offline mirrors ---------------------------------------------------------------------------------


@pytest.fixture()
def fake_hub(samples_dir, monkeypatch):
    """A hub without a network: the probe finds every repo, snapshot_download copies the sample repo; the
    downloads are recorded."""
    calls = []
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")

    def repo_info(self, repo, revision=None, **kwargs):  # as the hub answers: the commit a revision names
        return SimpleNamespace(id=repo, sha=revision if revision and len(revision) == 40 else "f" * 40)

    monkeypatch.setattr("huggingface_hub.HfApi.repo_info", repo_info)

    def snapshot_download(repo_id, repo_type, revision, local_dir):
        calls.append((repo_id, repo_type, revision))
        shutil.copytree(samples_dir / repo_id, local_dir, dirs_exist_ok=True)
        return str(local_dir)

    monkeypatch.setattr("huggingface_hub.snapshot_download", snapshot_download)
    return calls


def test_download_writes_a_manifest_and_verify_catches_tampering(fake_hub, tmp_path, capsys):
    mirror = tmp_path / "mirror"
    assert main(["download", "--data-dir", str(mirror), "--tasks", "ATEC", "T2Reranking"]) == 0
    assert fake_hub == [
        ("C-MTEB/ATEC", "dataset", "0f319b1142f28d00e055a6770f3f726ae9b7d865"),
        ("mteb/T2Reranking", "dataset", "a34fe6bc0dff185af1228e49a0f6fb1de1565627"),
    ]
    manifest = json.loads((mirror / MANIFEST).read_text())
    entry = manifest["repos"]["C-MTEB/ATEC"]
    assert entry["revision"] == "0f319b1142f28d00e055a6770f3f726ae9b7d865" and entry["tasks"] == ["ATEC"]
    assert entry["files"]["data/test-00000-of-00001.parquet"]["size"] > 0
    assert len(entry["files"]["README.md"]["sha256"]) == 64
    capsys.readouterr()
    assert main(["verify", "--data-dir", str(mirror)]) == 0
    assert "OK" in capsys.readouterr().out
    target = mirror / "C-MTEB/ATEC/data/test-00000-of-00001.parquet"
    data = bytearray(target.read_bytes())
    data[-20] ^= 0xFF
    target.write_bytes(bytes(data))
    assert main(["verify", "--data-dir", str(mirror)]) == 1
    assert "C-MTEB/ATEC/data/test-00000-of-00001.parquet: content differs" in capsys.readouterr().out


def test_run_refuses_a_mirror_at_another_revision(fake_hub, tiny_bert, tmp_path, capsys):
    mirror = tmp_path / "mirror"
    assert main(["download", "--data-dir", str(mirror), "--tasks", "ATEC"]) == 0
    manifest = json.loads((mirror / MANIFEST).read_text())
    manifest["repos"]["C-MTEB/ATEC"]["revision"] = "0" * 40
    (mirror / MANIFEST).write_text(json.dumps(manifest))
    out = tmp_path / "out"
    expect_error(
        ["run", "--model", str(tiny_bert), "--tasks", "ATEC", "--data-dir", str(mirror), "--output-dir", str(out)],
        "is at revision 0000000000000000000000000000000000000000",
        capsys,
    )
    assert (
        main(
            [
                "run",
                "--model",
                str(tiny_bert),
                "--tasks",
                "ATEC",
                "--data-dir",
                str(mirror),
                "--output-dir",
                str(out),
                "--allow-revision-mismatch",
                "--no-progress",
            ]
        )
        == 0
    )
    record = read_run_record(next(out.rglob("run.json")).parent.parent)
    assert record["tasks"]["ATEC"]["mirror_revision"] == "0" * 40
