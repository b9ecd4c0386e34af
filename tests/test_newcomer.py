"""A newcomer's first hour: what fails says so in one line, at once, and leaves nothing behind."""

from __future__ import annotations

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

    monkeypatch.setattr("huggingface_hub.HfApi.repo_info", repo_info)
    monkeypatch.setattr("cmteb.tasks.mirror.snapshot_download", never)
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

    monkeypatch.setattr("cmteb.runner.systems.BGEEncoder.load", no_model)
    out = tmp_path / "out"
    assert (
        main(["run", "--model", str(tiny_bert), "--tasks", "ATEC", "AFQMC", "--output-dir", str(out), "--no-progress"])
        == 2
    )
    err = _one_line(capsys)
    named = "the data of tasks ATEC, AFQMC (hub: C-MTEB/ATEC, C-MTEB/AFQMC)"
    assert f"{named} is neither in the datasets cache nor given with --data-dir" in err
    assert "cmteb download" in err
    assert not out.exists(), "no empty result folder, no lock file"
