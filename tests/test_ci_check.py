"""The README's quick regression check (`make ci-check`) against the committed baseline, on this CPU.

The baseline in results/baselines/ was made on one machine; CI runners and users have others (the CPU, its ISA
level, its libraries). A candidate of the same model must pass on any of them; a real drop must still fail, and
a hand-edited result must still be refused. `make test-arith` runs this file again under generic and AVX2
arithmetic.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cmteb.assets import SAMPLES_DIR
from cmteb.cli import main

BASELINES = Path(__file__).resolve().parents[1] / "results" / "baselines"
MODEL = "moka-ai/m3e-small"
#: Every test here runs the bundled model (in a process of its own).
pytestmark = pytest.mark.runs_model


def quick_run(out: Path, *extra: str) -> None:
    """`make ci-check`'s candidate run, in a process of its own (it inherits the arithmetic narrowed, if so);
    its noise is not measured again: compare takes the baseline's."""
    args = ["run", "--model", "m3e-small", "--data-dir", str(SAMPLES_DIR), "--subsample", "20"]
    args += ["--output-dir", str(out), "--no-progress", "--no-cache", "--noise-draws", "0", *extra]
    proc = subprocess.run([sys.executable, "-m", "cmteb.cli", *args], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def candidate(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("candidate")
    quick_run(out)
    return out


def test_the_same_model_on_this_cpu_passes_against_the_committed_baseline(candidate, capsys):
    assert main(["compare", str(BASELINES), str(candidate), "--model", MODEL]) == 0, capsys.readouterr().out
    report = capsys.readouterr().out
    assert "0 regressed" in report
    assert "Probe: same model, " in report, "the probe recognises the bundled model whatever the CPU"


def test_a_cut_max_length_is_caught_as_a_regression(tmp_path, capsys):
    quick_run(tmp_path, "--max-length", "8", "--tasks", "TNews")
    assert main(["compare", str(BASELINES), str(tmp_path), "--model", MODEL, "--tasks", "TNews"]) == 1
    report = capsys.readouterr().out
    assert "| TNews | Classification | accuracy |" in report and "| regressed |" in report
    assert "Probe: the model or its settings changed" in report


def test_a_hand_edited_candidate_result_is_refused(candidate, tmp_path, capsys):
    edited = tmp_path / "edited"
    shutil.copytree(candidate, edited)
    path = next(edited.rglob("TNews.json"))
    data = json.loads(path.read_text())
    data["scores"]["validation"][0]["accuracy"] = 0.99
    path.write_text(json.dumps(data))
    assert main(["compare", str(BASELINES), str(edited), "--model", MODEL]) == 2
    assert "TNews.json" in capsys.readouterr().err
