"""Every name that reaches a path (model name, revision, task, protocol, a local folder's name) keeps the run's
writes inside the output folder and the cache folder: an odd value is refused in one line or encoded."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cmteb.cli import main

ODD_VALUES = ["../../../x", "/tmp/abs", "a/b/c", "..", ".", "a\\b", "x y", "名字", "-rf", "a\x00b"]


def files_outside(root: Path, allowed: list[Path]) -> set[Path]:
    """Every file under `root` that is in none of the `allowed` folders."""
    return {
        path
        for path in root.rglob("*")
        if path.is_file() and not any(path.is_relative_to(folder) for folder in allowed)
    }


def run_with(tmp_path: Path, tiny_bert: Path, samples_dir: Path, flag: str, value: str, capsys) -> int:
    sandbox = tmp_path / "sandbox"
    model_dir = sandbox / "models" / "m"
    model_dir.parent.mkdir(parents=True, exist_ok=True)
    if not model_dir.exists():
        shutil.copytree(tiny_bert, model_dir)
    out, cache = sandbox / "work" / "out", sandbox / "work" / "cache"
    args = ["run", "--model", str(model_dir), "--tasks", "ATEC", "--data-dir", str(samples_dir)]
    args += ["--output-dir", str(out), "--cache-dir", str(cache), "--no-progress", f"{flag}={value}"]
    if flag == "--tasks":
        args.remove("--tasks")
        args.remove("ATEC")
    code = main(args)
    err = capsys.readouterr().err
    if code != 0:
        assert code == 2 and err.startswith("cmteb: error: ") and err.count("\n") == 1, err
    assert files_outside(sandbox, [out, cache, model_dir]) == set(), "nothing written outside out/ and cache/"
    assert not Path("/tmp/abs").exists() or not any(Path("/tmp/abs").rglob("ATEC.json"))
    return code


@pytest.mark.parametrize("value", ODD_VALUES, ids=repr)
@pytest.mark.parametrize("flag", ["--revision", "--model-name", "--tasks", "--protocol"])
def test_an_odd_name_is_refused_or_stays_inside(flag, value, tiny_bert, samples_dir, tmp_path, capsys):
    code = run_with(tmp_path, tiny_bert, samples_dir, flag, value, capsys)
    assert code == 2, f"{flag} {value!r} is no valid {flag[2:]}: refused"


@pytest.mark.parametrize("folder_name", ["名字 模型", "-model", ".hidden", "a\\b", "x..y"])
def test_a_local_folder_of_any_name_files_its_results_inside(folder_name, tiny_bert, samples_dir, tmp_path):
    model_dir = tmp_path / "models" / folder_name
    shutil.copytree(tiny_bert, model_dir)
    out = tmp_path / "out"
    args = ["run", "--model", str(model_dir), "--tasks", "ATEC", "--data-dir", str(samples_dir)]
    assert main([*args, "--output-dir", str(out), "--no-progress", "--no-cache"]) == 0
    [result] = list(out.rglob("ATEC.json"))
    model_folder = result.parent.parent
    assert model_folder.parent == out / "results"
    assert model_folder.name.startswith("local__") and ".." not in model_folder.name.replace("x..y", "")
