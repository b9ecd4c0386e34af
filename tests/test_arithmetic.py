"""The run names its arithmetic, keeps a probe and measures noise; `compare` judges float noise by them."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from results_fixtures import arithmetic, write_model, write_run_record

from cmteb.cli import main
from cmteb.results.files import CHECKSUMS, read_run_record
from cmteb.results.probe import PROBE_DIMS, PROBE_PER_TASK, drift_threshold, probe_path, read_probe, write_probe
from cmteb.runner import run
from cmteb.runner.noise import perturbed_vectors

SCORES = {"ATEC": {"cosine_spearman": 0.60}, "TNews": {"accuracy": 0.50}}
THRESHOLD = drift_threshold(4, 2048)


def _folder(root, name, scores, record_tasks=None, **header):
    folder = write_model(root / name, "org/m", "r1", scores)
    return write_run_record(folder, record_tasks or {}, **header)


def _row(report: str, task: str) -> str:
    return next(line for line in report.splitlines() if line.startswith(f"| {task} "))


def test_a_drop_within_the_tasks_measured_noise_is_not_a_regression(tmp_path, capsys):
    """Each task's smallest detectable drop is the tolerance, or twice its measured noise where that is larger."""
    base = _folder(tmp_path, "base", SCORES, {"ATEC": {"noise": {"points": 0.6, "draws": 4}}, "TNews": {}})
    dropped = {**SCORES, "ATEC": {"cosine_spearman": 0.59}, "TNews": {"accuracy": 0.49}}
    cand = _folder(tmp_path, "cand", dropped)
    assert main(["compare", str(base), str(cand)]) == 1  # TNews: -1.00 beyond the 0.5 tolerance
    report = capsys.readouterr().out
    assert "| -1.00 | ok | 0.60 | 1.20 |" in _row(report, "ATEC")  # within twice its noise
    assert "| -1.00 | regressed | — | 0.50 |" in _row(report, "TNews")  # no noise measured: the tolerance
    write_run_record(base, {"ATEC": {"noise": {"points": 0.4, "draws": 4}}})
    assert main(["compare", str(base), str(cand), "--tasks", "ATEC"]) == 1
    assert "| -1.00 | regressed | 0.40 | 0.80 |" in _row(capsys.readouterr().out, "ATEC")


def test_every_arithmetic_difference_is_listed_and_an_unrecorded_side_is_unknown_not_0(tmp_path, capsys):
    base = _folder(tmp_path, "base", SCORES, arithmetic=arithmetic())
    cand = _folder(tmp_path, "cand", SCORES, arithmetic=arithmetic(torch_capability="AVX512", mkl="2025.0"))
    assert main(["compare", str(base), str(cand)]) == 0
    report = capsys.readouterr().out
    assert "Arithmetic differs in 2: cpu.mkl: 2024.2 -> 2025.0; cpu.torch_capability: AVX2 -> AVX512" in report
    assert main(["compare", str(base), str(base)]) == 0
    assert "Arithmetic: the same on both sides" in capsys.readouterr().out
    old = _folder(tmp_path, "old", SCORES)  # a run from before runs named their arithmetic
    assert main(["compare", str(old), str(cand)]) == 0
    report = capsys.readouterr().out
    assert "unknown on the baseline side" in report and "the noise band is unknown, not 0" in report
    assert "noise band 0" not in report


def _probed(folder, vectors: np.ndarray) -> None:
    rows = [{"kind": "embedding", "key": f"{k:032x}", "values": v} for k, v in enumerate(vectors)]
    write_probe(folder / "ATEC.json", rows)


@pytest.mark.parametrize(
    ("move", "verdict"),
    [
        (0.0, "Probe: same model, same arithmetic (largest drift 0.00e+00"),
        (THRESHOLD / 20, "Probe: same model, float noise under the same recorded arithmetic"),
        (1e-2, "Probe: the model or its settings changed (largest drift 1."),
    ],
)
def test_the_probe_tells_float_noise_from_a_changed_model(tmp_path, capsys, move, verdict):
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((PROBE_PER_TASK, PROBE_DIMS)).astype(np.float32)
    header = {"arithmetic": arithmetic(), "probe": {"threshold": THRESHOLD}}
    base, cand = _folder(tmp_path, "base", SCORES, **header), _folder(tmp_path, "cand", SCORES, **header)
    _probed(base, vectors)
    moved = perturbed_vectors(vectors, [str(k) for k in range(len(vectors))], move, 1, normalize=False)
    _probed(cand, moved if move else vectors)
    assert main(["compare", str(base), str(cand)]) == 0
    assert verdict in capsys.readouterr().out


@pytest.mark.parametrize("damage", ["missing", "garbage"])
def test_a_missing_or_damaged_probe_falls_back_in_one_line(tmp_path, capsys, damage):
    header = {"arithmetic": arithmetic(), "probe": {"threshold": THRESHOLD}}
    base, cand = _folder(tmp_path, "base", SCORES, **header), _folder(tmp_path, "cand", SCORES, **header)
    vectors = np.ones((2, 4), np.float32)
    _probed(base, vectors)
    _probed(cand, vectors)
    if damage == "missing":
        probe_path(cand / "ATEC.json").unlink()
    else:
        probe_path(cand / "ATEC.json").write_bytes(b"not parquet")
    assert main(["compare", str(base), str(cand)]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("- Probe:")]
    assert len(lines) == 1 and "none usable on the candidate side" in lines[0]
    assert ("holds no probe" if damage == "missing" else "cannot be read") in lines[0]


def test_perturbations_have_their_size_and_depend_on_the_text_and_draw_alone():
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((50, 256)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    texts = [f"text {k}" for k in range(50)]
    moved = perturbed_vectors(vectors, texts, 1e-3, 1, normalize=True)
    drift = np.linalg.norm(moved - vectors, axis=1)
    assert 0.8e-3 < drift.mean() < 1.2e-3 and np.allclose(np.linalg.norm(moved, axis=1), 1, atol=1e-6)
    again = perturbed_vectors(vectors[::-1], texts[::-1], 1e-3, 1, normalize=True)[::-1]
    assert np.array_equal(moved, again)  # the same text moves alike wherever it stands
    assert not np.array_equal(moved, perturbed_vectors(vectors, texts, 1e-3, 2, normalize=True))


def test_a_run_names_its_arithmetic_and_keeps_a_probe_and_noise_per_task(tiny_bert, samples_dir, tmp_path):
    import torch

    summary = run(
        str(tiny_bert),
        tasks=["ATEC", "T2Reranking"],
        data_dir=samples_dir,
        output_dir=tmp_path,
        subsample=6,
        show_progress=False,
    )
    record = read_run_record(summary.output_dir)
    cpu = record["arithmetic"]["cpu"]
    assert cpu["torch_capability"] == torch.backends.cpu.get_cpu_capability() and cpu["onednn"] and cpu["mkl"]
    assert record["arithmetic"]["gpu"] is None
    assert {"torch", "transformers", "sentence-transformers", "scikit-learn", "numpy", "mteb"} <= set(
        record["arithmetic"]["packages"]
    )
    assert record["probe"]["threshold"] == pytest.approx(drift_threshold(2, 64))  # the tiny BERT's shape
    for outcome in summary.outcomes:
        entry = record["tasks"][outcome.spec.name]
        probe = read_probe(outcome.path)
        assert 0 < len(probe) <= PROBE_PER_TASK and set(probe["kind"]) == {"embedding"}
        assert all(len(v) == 32 for v in probe["values"])  # the tiny BERT's width, under PROBE_DIMS: kept whole
        assert probe_path(outcome.path).name in entry[CHECKSUMS]
        assert entry["noise"]["draws"] == 4 and len(entry["noise"]["scores"]) == 4
        assert entry["noise"]["size"] == record["probe"]["threshold"]


@pytest.mark.parametrize("size", [0.0, 0.5])
def test_noise_is_a_real_reevaluation(tiny_bert, samples_dir, tmp_path, monkeypatch, size):
    """Unperturbed draws reproduce the score exactly (fresh, seeded evaluations); large moves change it."""
    monkeypatch.setattr("cmteb.runner.probe.drift_threshold", lambda layers, reduction: size)
    tasks = ["TNews", "CLSClusteringS2S", "AFQMC"]
    summary = run(
        str(tiny_bert),
        tasks=tasks,
        data_dir=samples_dir,
        output_dir=tmp_path,
        subsample=10,
        noise_draws=2,
        show_progress=False,
    )
    noise = {name: entry["noise"] for name, entry in read_run_record(summary.output_dir)["tasks"].items()}
    for outcome in summary.outcomes:
        moved = [abs(s - outcome.score) for s in noise[outcome.spec.name]["scores"]]
        assert max(moved) == pytest.approx(noise[outcome.spec.name]["points"] / 100, abs=1e-8)
        if size == 0:
            assert moved == [0.0, 0.0], outcome.spec.name
    if size:
        assert any(noise[name]["points"] > 0 for name in tasks)


def test_a_full_run_measures_no_noise_unless_asked(tiny_bert, samples_dir, tmp_path):
    summary = run(str(tiny_bert), tasks=["ATEC"], data_dir=samples_dir, output_dir=tmp_path, show_progress=False)
    entry = read_run_record(summary.output_dir)["tasks"]["ATEC"]
    assert "noise" not in entry and read_run_record(summary.output_dir)["noise_draws"] == 0
    assert math.isfinite(summary.outcomes[0].score) and json.loads(summary.outcomes[0].path.read_text())
