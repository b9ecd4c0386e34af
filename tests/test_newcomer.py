"""A newcomer's first hour: what fails says so in one line, at once, and leaves nothing behind."""

from __future__ import annotations

import os
import re
from pathlib import Path

import huggingface_hub
import pytest

from cmteb.cli import main


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("cmteb: error: ") and err.count("\n") == 1, err
    return err


class ConnectError(Exception):
    """What httpx raises when the hub's name does not resolve."""


def _hub_down(monkeypatch):
    """A machine that is online as far as the libraries know, but reaches no hub: every request is counted."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    calls = []

    def repo_info(self, repo, **kwargs):
        calls.append(repo)
        raise ConnectError("[Errno -2] Name or service not known")

    def never(*args, **kwargs):
        raise AssertionError("a library download ran (with its retries) after the probe failed")

    def cache_lookups_only(*args, **kwargs):  # looking in the local cache stays allowed
        return (cached_snapshot if kwargs.get("local_files_only") else never)(*args, **kwargs)

    cached_snapshot = huggingface_hub.snapshot_download
    monkeypatch.setattr("huggingface_hub.HfApi.repo_info", repo_info)
    monkeypatch.setattr("huggingface_hub.snapshot_download", cache_lookups_only)
    monkeypatch.setattr("transformers.AutoConfig.from_pretrained", never)
    return calls


@pytest.mark.parametrize("online", [False, True], ids=["HF_HUB_OFFLINE", "no-network"])
def test_download_without_a_hub_is_one_line_and_writes_nothing(online, tmp_path, capsys, monkeypatch):
    calls = _hub_down(monkeypatch) if online else []
    assert main(["download", "--tasks", "AFQMC", "--data-dir", str(tmp_path / "mirror")]) == 2
    err = _one_line(capsys)
    assert "cannot download C-MTEB/AFQMC" in err and "on a connected machine" in err
    assert ("cannot be reached (ConnectError" in err) if online else ("HF_HUB_OFFLINE is set" in err)
    assert calls == (["C-MTEB/AFQMC"] if online else [])
    assert not (tmp_path / "mirror").exists()


def test_an_unreachable_hub_model_is_one_quick_line(samples_dir, tmp_path, capsys, monkeypatch):
    calls = _hub_down(monkeypatch)
    args = ["run", "--model", "BAAI/bge-small-zh-v1.5", "--tasks", "AFQMC", "--data-dir", str(samples_dir)]
    assert main([*args, "--output-dir", str(tmp_path / "out"), "--no-progress"]) == 2
    err = _one_line(capsys)
    assert "model BAAI/bge-small-zh-v1.5 is not in the local Hugging Face cache" in err and "hf download" in err
    assert calls == ["BAAI/bge-small-zh-v1.5"], "one probe, no retries"


def test_uncached_hub_data_offline_is_checked_before_the_model_and_leaves_nothing(
    tiny_bert, tmp_path, capsys, monkeypatch
):
    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded before every task's data was found")

    monkeypatch.setattr("cmteb.models.encoder.BGEEncoder.load", no_model)
    out = tmp_path / "out"
    assert (
        main(["run", "--model", str(tiny_bert), "--tasks", "ATEC", "AFQMC", "--output-dir", str(out), "--no-progress"])
        == 2
    )
    err = _one_line(capsys)
    named = "the data of 2 tasks (ATEC, AFQMC) (hub: C-MTEB/ATEC, C-MTEB/AFQMC)"
    assert f"{named} is neither in the datasets cache nor given with --data-dir" in err
    assert "cmteb download" in err
    assert not out.exists(), "no empty result folder, no lock file"
    # Every task missing: a few named, the rest counted, the fix said once.
    assert main(["run", "--model", str(tiny_bert), "--output-dir", str(out), "--no-progress"]) == 2
    err = _one_line(capsys)
    assert "the data of 33 tasks (T2Retrieval, MMarcoRetrieval, DuRetrieval and 30 more)" in err
    assert len(err) < 400 and err.count("cmteb download") == 1


def test_data_no_cache_holds_is_refused_before_mteb_and_torch_are_imported(tiny_bert, tmp_path):
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from cmteb.cli import main\n"
        f"rc = main(['run', '--model', {str(tiny_bert)!r}, '--tasks', 'ATEC', '--output-dir', {str(tmp_path)!r}])\n"
        "print(rc, [m for m in ('mteb', 'torch', 'datasets') if m in sys.modules])\n"
    )
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf"),
        "HF_DATASETS_CACHE": "",
        "HF_HUB_CACHE": "",
    }
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.strip() == "2 []"
    assert "the data of task ATEC (hub: C-MTEB/ATEC) is neither in the datasets cache" in done.stderr


@pytest.mark.parametrize(
    ("folder", "cached"),
    [
        ("datasets/c-_mteb___atec", True),  # datasets' own folder name (snake case)
        ("hub/datasets--C-MTEB--ATEC", True),
        ("hub/datasets--C-MTEB--AFQMC", False),
        ("datasets/other___thing", False),
    ],
)
def test_a_copy_in_either_hugging_face_cache_lets_the_task_try_to_load(folder, cached, tmp_path, monkeypatch):
    from cmteb.hub import surely_uncached

    for name in ("HF_DATASETS_CACHE", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    (tmp_path / folder).mkdir(parents=True)
    assert surely_uncached(["C-MTEB/ATEC"]) == ([] if cached else ["C-MTEB/ATEC"])


def test_a_gpu_asked_for_where_none_can_be_is_refused_before_torch_is_imported(tmp_path):
    """A CPU build of torch, or a Linux machine without a GPU driver: one line, before the seconds torch takes."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from cmteb.errors import CmtebError\n"
        "import cmteb.models.devices as devices\n"
        "devices.torch_gpu_build = lambda: {build}\n"
        "devices.GPU_DRIVER_MARKERS = ('{missing}',)\n"
        "try:\n"
        "    devices.name_device('cuda:1')\n"
        "except CmtebError as exc:\n"
        "    print(exc, '|', 'torch' in sys.modules)\n"
    )
    for build, why in ((False, "the installed torch is a CPU build"), (True, "this machine has no GPU driver")):
        code = script.format(build=build, missing=tmp_path / "no-driver")
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        assert f"--device cuda:1 asked for a GPU, but {why}: use --device cpu | False" in done.stdout


BASELINES = str(Path(__file__).resolve().parents[1] / "results" / "baselines")


@pytest.mark.parametrize("command", [["tasks"], ["compare", BASELINES, BASELINES]])
def test_a_closed_pipe_ends_a_command_quietly(command):
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "cmteb.cli", *command], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    proc.stdout.close()  # as `| head` does once it has its lines: every write meets a closed pipe
    err = proc.stderr.read().decode()
    assert proc.wait() == 0 and err == "", err


def test_extras_are_extras_of_every_protocol_and_tasks_says_so(capsys):
    from cmteb.tasks.protocols import resolve_protocol, runnable_protocols

    for name in runnable_protocols():
        protocol = resolve_protocol(name)
        chosen = protocol.select(["T2RerankingZh2En", "T2RerankingEn2Zh"])
        assert all(protocol.is_extra(s.name) for s in chosen) and not set(chosen) & set(protocol.tasks)
        assert main(["tasks", "--protocol", name]) == 0
        assert "run when named or with their type, in no average" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize(
    ("task", "message"),
    [
        ("STS22", "STS22 is in protocol flagembedding-2023, not mteb-cmn-v1: add --protocol flagembedding-2023"),
        ("AmazonReviewsClassification", "is in protocol flagembedding-2023, not mteb-cmn-v1"),
        ("NFCorpus", "unknown task 'NFCorpus': no protocol has it"),
        ("T2Retreival", "unknown task 'T2Retreival' (did you mean T2Retrieval"),
    ],
)
def test_a_task_of_another_protocol_names_that_protocol(task, message, tmp_path, capsys):
    assert main(["run", "--model", "m3e-small", "--tasks", task, "--output-dir", str(tmp_path / "o")]) == 2
    assert message in _one_line(capsys)


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_every_written_file_gets_the_mode_the_umask_gives(umask, tiny_bert, samples_dir, tmp_path):
    import os
    import stat

    previous = os.umask(umask)
    try:
        out = tmp_path / "out"
        args = ["run", "--model", str(tiny_bert), "--tasks", "ATEC", "--data-dir", str(samples_dir)]
        assert main([*args, "--output-dir", str(out), "--cache-dir", str(tmp_path / "cache"), "--no-progress"]) == 0
        assert main(["leaderboard", "--results", str(out), "--no-reference", "--out", str(tmp_path / "board")]) == 0
        card = ["model-card", "--results", str(out), "--model", str(tiny_bert), "--allow-samples"]
        assert main([*card, "--out", str(tmp_path / "README.md")]) == 0
    finally:
        os.umask(previous)
    written = [
        *(tmp_path / "board").iterdir(),
        tmp_path / "README.md",
        *out.rglob("*.json"),
        *(tmp_path / "cache").rglob("*.json"),
    ]
    modes = {str(p.relative_to(tmp_path)): oct(stat.S_IMODE(p.stat().st_mode)) for p in written}
    assert set(modes.values()) == {oct(0o666 & ~umask)}, modes


def _run(model, samples_dir, out, *extra):
    args = ["run", "--model", str(model), "--tasks", "ATEC", "--data-dir", str(samples_dir), "--output-dir", str(out)]
    assert main([*args, "--no-progress", *extra]) == 0


def test_runs_of_other_settings_never_share_a_folder_and_say_so(tiny_bert, samples_dir, tmp_path, capsys):
    import hashlib

    from cmteb.results.reader import collect_results

    tag = hashlib.sha256("查询：".encode()).hexdigest()[:8]  # the folder names the instruction asked for
    out = tmp_path / "out"
    _run(tiny_bert, samples_dir, out)
    _run(tiny_bert, samples_dir, out, "--pooling", "mean", "--max-length", "64")
    _run(tiny_bert, samples_dir, out, "--instruction", "查询：")
    folders = sorted(p.name for p in (out / "results" / "local__tiny-bert0").iterdir())
    revision = folders[0]
    assert folders == sorted([revision, f"{revision}__pooling-mean__max-length-64", f"{revision}__instruction-{tag}"])
    printed = " ".join(capsys.readouterr().out.split())  # titles wrap in a narrow terminal
    titles = re.findall(r"local/tiny-bert0 \(.*?\) — protocol mteb-cmn-v1", printed)
    assert "pooling mean, max length 64" in titles[1] and f"instruction {tag}" in titles[2]
    results = {r.settings_text for r in collect_results([out])}
    assert results == {"", "pooling mean, max length 64", f"instruction {tag}"}
    assert main(["leaderboard", "--results", str(out), "--no-reference", "--out", str(tmp_path / "board")]) == 0
    board = (tmp_path / "board" / "leaderboard.md").read_text()
    assert (
        "local/tiny-bert0 @ " in board and "(pooling mean, max length 64)" in board and f"(instruction {tag})" in board
    )


def test_rows_that_would_read_alike_name_what_differs(tiny_bert, samples_dir, tmp_path):
    from cmteb.report.leaderboard import build_rows

    _run(tiny_bert, samples_dir, tmp_path / "demo")
    _run(tiny_bert, samples_dir, tmp_path / "ci", "--subsample", "5")
    _run(tiny_bert, samples_dir, tmp_path / "copy")
    names = sorted(r.name for r in build_rows([tmp_path], with_reference=False))
    revision = names[0].split(" @ ")[1].split()[0]
    assert names == sorted(
        [
            f"local/tiny-bert0 @ {revision} in {tmp_path / 'copy'}",
            f"local/tiny-bert0 @ {revision} in {tmp_path / 'demo'}",
            f"local/tiny-bert0 @ {revision} (subsample 5)",
        ]
    )


def test_model_card_takes_what_run_was_given_and_prefers_full_runs(tiny_bert, samples_dir, tmp_path, capsys):
    import yaml

    _run(tiny_bert, samples_dir, tmp_path / "results" / "demo")
    _run(tiny_bert, samples_dir, tmp_path / "results" / "baselines", "--subsample", "5")
    _run(tiny_bert, samples_dir, tmp_path / "results" / "demo", "--pooling", "mean")
    card = ["model-card", "--results", str(tmp_path / "results"), "--allow-samples"]
    for given in (str(tiny_bert), "local/tiny-bert0", f"{tiny_bert}/"):
        out = tmp_path / f"card-{len(given)}.md"
        assert main([*card, "--model", given, "--out", str(out)]) == 0, capsys.readouterr().err
        front = yaml.safe_load(out.read_text().split("---")[1])
        (entry,) = front["model-index"]
        # The run of default settings (neither the subsample nor mean pooling), and it says it ran on samples.
        assert entry["name"] == "tiny-bert0 (measured on the bundled sample data, not C-MTEB)"
        assert "**Results measured on the bundled sample data, not C-MTEB.**" in out.read_text()
    assert (
        main(["model-card", "--results", str(tmp_path / "results" / "baselines"), "--model", "local/tiny-bert0"]) == 2
    )
    assert "measured on the bundled sample data" in _one_line(capsys)


def test_the_summary_of_a_samples_run_says_so_and_what_the_revision_is(tiny_bert, samples_dir, tmp_path, capsys):
    _run(tiny_bert, samples_dir, tmp_path / "out")
    text = " ".join(capsys.readouterr().out.split())
    assert "on the bundled SAMPLE data, not C-MTEB" in text.split("┏")[0]  # the title
    assert text.rstrip().endswith("many tasks are easy enough to score 100")  # the last line
    assert "(a hash of its weight, config and tokenizer files)" in text
