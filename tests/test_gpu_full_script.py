"""`bench/gpu_full.sh`, the full-size GPU run in two device calls: its guards, which keep a device call from
spending its minutes on the wrong work."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "bench" / "gpu_full.sh"


def _call(step: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "WORK": str(tmp_path / "work"), "INSTALL": "0", "PYTHON": "false"}
    return subprocess.run(
        ["bash", str(SCRIPT), step, str(tmp_path / "out")], cwd=ROOT, env=env, capture_output=True, text=True
    )


def test_the_run_call_refuses_a_machine_without_the_prepared_mirror(tmp_path):
    # On a fresh machine the run would otherwise build the 755 MB mirror inside the timed call.
    done = _call("run", tmp_path)
    assert done.returncode == 3
    assert "run 'prep' on this machine first" in done.stdout
    assert not (tmp_path / "out" / "full.txt").exists()


def test_an_unknown_step_names_the_two_calls(tmp_path):
    done = _call("build", tmp_path)
    assert done.returncode == 2
    assert "prep (device call 1), run (call 2" in done.stdout
