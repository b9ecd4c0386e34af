"""What `compare` says of float noise, line by line: the arithmetic's differences, the thread counts, the
probes of each side (tests/test_arithmetic.py checks the verdicts they lead to)."""

from __future__ import annotations

import numpy as np
from results_fixtures import arithmetic, write_model, write_run_record

from cmteb.report.compare import resolve_folder
from cmteb.report.noise import ARITHMETIC, CHANGED, UNKNOWN, arithmetic_differences, judge_noise
from cmteb.results.files import CHECKSUMS, file_checksums
from cmteb.results.probe import probe_path, write_probe

SCORES = {"ATEC": {"cosine_spearman": 0.60}, "TNews": {"accuracy": 0.50}}


def _side(root, name, tasks=None, **header):
    folder = write_model(root / name, "org/m", "r1", SCORES)
    write_run_record(folder, tasks or {}, **header)
    return folder


def _judged(base, cand):
    return judge_noise(resolve_folder(base, None), resolve_folder(cand, None))


def test_every_key_of_either_arithmetic_that_differs_is_named():
    base = {"cpu": {"model": "A", "threads": 2}, "gpu": None, "packages": {"torch": "2.13.0"}}
    cand = {"cpu": {"model": "B"}, "gpu": {"name": "H100"}, "packages": {"torch": "2.13.0", "mteb": "2.1"}}
    assert arithmetic_differences(base, cand) == [
        "cpu.model: A -> B",
        "cpu.threads: 2 -> none",
        "gpu.name: none -> H100",
        "packages.mteb: none -> 2.1",
    ]
    assert arithmetic_differences(cand, cand) == []


def test_blas_thread_counts_are_an_arithmetic_difference(tmp_path):
    header = {"arithmetic": arithmetic()}
    base = _side(tmp_path, "base", {"ATEC": {"blas_threads": 2}, "TNews": {"blas_threads": 1}}, **header)
    cand = _side(tmp_path, "cand", {"ATEC": {"blas_threads": 4}, "TNews": {"blas_threads": None}}, **header)
    judged = _judged(base, cand)
    assert judged.differences == ("tasks.blas_threads: 1,2 -> 4",)
    assert judged.lines[0] == "Arithmetic differs in 1: tasks.blas_threads: 1,2 -> 4"
    none = _side(tmp_path, "none", {"ATEC": {"status": "ran"}}, **header)
    assert _judged(base, none).differences == ("tasks.blas_threads: 1,2 -> none",)
    assert _judged(base, base).lines[0] == (
        "Arithmetic: the same on both sides (CPU, ISA level, libraries, threads, versions)"
    )


def test_an_unrecorded_arithmetic_is_named_by_its_side(tmp_path):
    recorded = _side(tmp_path, "recorded", arithmetic=arithmetic())
    old = _side(tmp_path, "old")
    line = (
        "Arithmetic: unknown on the {} side (recorded before runs named their CPU, libraries and versions): the "
        "noise band is unknown, not 0"
    )
    assert _judged(recorded, old).lines[0] == line.format("candidate")
    assert _judged(old, recorded).lines[0] == line.format("baseline")
    assert _judged(old, recorded).differences == ()


def _probe(folder, task: str, vectors, keys: str | None = None) -> None:
    """`task`'s probe: one row a vector, keyed `<keys>-<k>` (`keys`: the task's name unless said)."""
    rows = [{"kind": "embedding", "key": f"{keys or task}-{k}", "values": v} for k, v in enumerate(vectors)]
    write_probe(folder / f"{task}.json", rows)


def _recorded(folder, header: dict | None = None) -> None:
    """A run record listing each task's files (result and probe, where there is one) with their checksums."""
    tasks = {t: {CHECKSUMS: file_checksums([folder / f"{t}.json", probe_path(folder / f"{t}.json")])} for t in SCORES}
    header = header if header is not None else {"arithmetic": arithmetic(), "probe": {"threshold": 1e-3}}
    write_run_record(folder, tasks, **header)


def test_every_tasks_probe_counts_and_a_task_without_one_is_passed_over(tmp_path):
    """ATEC (first by name) has no probe; TNews's probes are what is compared."""
    base, cand = (write_model(tmp_path / n, "org/m", "r1", SCORES) for n in ("base", "cand"))
    vectors = np.eye(3, 4, dtype=np.float32)
    _probe(base, "TNews", vectors)
    _probe(cand, "TNews", vectors + 1e-5)
    for folder in (base, cand):
        _recorded(folder)
    judged = _judged(base, cand)
    assert judged.model == ARITHMETIC and judged.drift.rows == 3
    assert judged.lines[1].startswith("Probe: same model, float noise under the same recorded arithmetic: largest")


def test_a_probe_changed_after_its_run_is_not_used(tmp_path):
    base, cand = (write_model(tmp_path / n, "org/m", "r1", SCORES) for n in ("base", "cand"))
    for folder in (base, cand):
        _probe(folder, "ATEC", np.ones((2, 4), np.float32))
        _probe(folder, "TNews", np.ones((2, 4), np.float32))
        _recorded(folder)
    _probe(base, "TNews", np.zeros((2, 4), np.float32))  # rewritten after the run recorded it
    judged = _judged(base, cand)
    assert judged.model == UNKNOWN and judged.drift is None
    assert judged.lines[1] == (
        "Probe: none usable on the baseline side (TNews.probe.parquet changed after it was written): tasks judged "
        "by tolerance and paired test"
    )
    for folder in (base, cand):
        for task in SCORES:
            probe_path(folder / f"{task}.json").unlink()
        _recorded(folder)
    assert _judged(base, cand).lines[1] == (
        "Probe: none usable on the baseline side (it holds no probe (a run before probes, or a lexical baseline)): "
        "tasks judged by tolerance and paired test"
    )


def _probed_pair(tmp_path, cand_vectors, base_header=None, cand_header=None, cand_keys="TNews"):
    """Two folders whose TNews probes hold the given vectors; each run record with its header."""
    base, cand = (write_model(tmp_path / n, "org/m", "r1", SCORES) for n in ("base", "cand"))
    vectors = np.eye(3, 4, dtype=np.float32)
    _probe(base, "TNews", vectors)
    _probe(cand, "TNews", cand_vectors, keys=cand_keys)
    _recorded(base, base_header)
    _recorded(cand, cand_header)
    return base, cand


def test_each_probe_verdict_in_full(tmp_path):
    same = np.eye(3, 4, dtype=np.float32)
    judged = _judged(*_probed_pair(tmp_path / "same", same))
    assert judged.lines[1] == (
        "Probe: same model, same arithmetic (largest drift 0.00e+00, median 0.00e+00 over 3 probed texts): scores "
        "can differ only through the data"
    )
    other_cpu = {"arithmetic": arithmetic(torch_capability="AVX512"), "probe": {"threshold": 1e-3}}
    judged = _judged(*_probed_pair(tmp_path / "cpu", same + 1e-4, cand_header=other_cpu))
    assert judged.model == ARITHMETIC and judged.threshold == 1e-3
    assert judged.lines[1] == (
        "Probe: same model, different arithmetic: largest drift 2.00e-04, median 2.00e-04 over 3 probed texts, "
        "within the 1.0e-03 fp32 arithmetic allows; each task is judged against the noise such a drift gives its "
        "score"
    )
    judged = _judged(*_probed_pair(tmp_path / "changed", same + 0.5))
    assert judged.model == CHANGED and judged.lines[1].startswith("Probe: the model or its settings changed (largest")
    assert judged.lines[1].endswith(", beyond the 1.0e-03 fp32 arithmetic allows)")
    judged = _judged(*_probed_pair(tmp_path / "apart", same, cand_keys="ATEC"))
    assert judged.model == UNKNOWN and judged.drift is None
    assert judged.lines[1] == ("Probe: the two sides share no probed text: tasks judged by tolerance and paired test")


def test_the_larger_threshold_decides_and_a_drift_of_exactly_it_is_noise(tmp_path):
    same = np.eye(3, 4, dtype=np.float32)
    moved = same + 1e-4
    first = _judged(*_probed_pair(tmp_path / "a", moved))
    exact = {"arithmetic": arithmetic(), "probe": {"threshold": first.drift.largest}}
    judged = _judged(*_probed_pair(tmp_path / "b", moved, base_header={"arithmetic": arithmetic()}, cand_header=exact))
    assert judged.threshold == first.drift.largest and judged.model == ARITHMETIC  # no threshold on one side
    neither = _judged(*_probed_pair(tmp_path / "c", moved, {"arithmetic": arithmetic()}, {"arithmetic": arithmetic()}))
    assert neither.model == UNKNOWN and neither.threshold is None and neither.drift is not None
    assert neither.lines[1].startswith("Probe: the two sides share no probed text")


def test_a_missing_probe_is_named_by_its_side(tmp_path):
    base, cand = _probed_pair(tmp_path, np.eye(3, 4, dtype=np.float32))
    probe_path(cand / "TNews.json").unlink()
    _recorded(cand)
    line = _judged(base, cand).lines[1]
    assert line.startswith("Probe: none usable on the candidate side (it holds no probe")


def test_each_tasks_noise_is_the_larger_sides_over_both_sides_tasks(tmp_path):
    header = {"arithmetic": arithmetic()}
    base = write_model(tmp_path / "base", "org/m", "r1", {"ATEC": {"cosine_spearman": 0.6}})
    cand = write_model(tmp_path / "cand", "org/m", "r1", SCORES)
    write_run_record(base, {"ATEC": {"noise": {"points": 0.25}}}, **header)
    write_run_record(cand, {"ATEC": {"noise": {"points": 0.5}}, "TNews": {"noise": {"points": 0.125}}}, **header)
    assert _judged(base, cand).noise == {"ATEC": 0.5, "TNews": 0.125}
    assert _judged(cand, base).noise == {"ATEC": 0.5, "TNews": 0.125}
