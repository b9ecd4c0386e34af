"""Float noise between two result folders, for `cmteb compare`: what arithmetic differs, what the probes say
of the model, and how far each task's score can move without any real change.

The judgement, in order:
1. Arithmetic: the two run records' `arithmetic` blocks (`runner/arithmetic.py`) compared key by key; every
   difference is listed. A side recorded before runs named their arithmetic makes the noise band unknown.
2. Probe: the drift between the two sides' probes (`results/probe.py`). Zero with the same arithmetic: the
   same model computed the same way. Within the threshold fp32 arithmetic allows: the same model on other
   arithmetic. Beyond it: the model or its settings (max length, pooling, instruction) changed. A probe
   missing or damaged on either side leaves the model question open, said in one line.
3. Per task: the noise the run measured (`runner/noise.py`: the score's largest move under perturbations at
   the probe threshold), the larger of the two sides'. No drop within NOISE_MARGIN times a task's noise is
   called a regression, whatever the probe says: a score that float noise can move by 1.3 points cannot show a
   real 1-point drop. The margin because a few draws see the largest move float noise can make only by luck: a
   classification that two draws saw move by 0.25 points moved by 0.5 between two implementations' last bits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cmteb.errors import CmtebError
from cmteb.results.files import CHECKSUMS, checksum_problem, read_run_record
from cmteb.results.probe import Drift, probe_drift, probe_path, read_probe
from cmteb.results.reader import ModelResults

#: How many times its measured noise a task's score must drop before the drop can be a regression.
NOISE_MARGIN = 2.0
#: The judgement's outcomes.
SAME, ARITHMETIC = "same model, same arithmetic", "same model, other arithmetic"
CHANGED, UNKNOWN = "model or settings changed", "unknown"


@dataclass(frozen=True)
class NoiseJudgement:
    """What `compare` says of float noise, and what it needs per task."""

    model: str  # SAME, ARITHMETIC, CHANGED or UNKNOWN
    lines: tuple[str, ...]  # the report's sentences, each one line
    differences: tuple[str, ...]  # "cpu.torch_capability: AVX512 -> AVX2", ... (None recorded: empty)
    drift: Drift | None
    threshold: float | None
    noise: dict[str, float | None]  # per task, the larger side's measured noise in points (None: not measured)


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), inner, out)
    else:
        out[prefix] = value


def arithmetic_differences(base: dict[str, Any], cand: dict[str, Any]) -> list[str]:
    """Every key of two arithmetic records whose value differs, as `key: baseline -> candidate`."""
    flat_b: dict[str, Any] = {}
    flat_c: dict[str, Any] = {}
    _flatten("", base, flat_b)
    _flatten("", cand, flat_c)
    keys = sorted(set(flat_b) | set(flat_c))
    return [f"{k}: {_shown(flat_b.get(k))} -> {_shown(flat_c.get(k))}" for k in keys if flat_b.get(k) != flat_c.get(k)]


def _thread_differences(base: dict[str, Any], cand: dict[str, Any]) -> list[str]:
    """The BLAS thread counts the two sides' tasks were evaluated with, when they differ: scikit-learn's
    classification fits differ in their last digits with another count."""
    counts = [
        sorted({n for entry in r["tasks"].values() if isinstance(n := entry.get("blas_threads"), int)})
        for r in (base, cand)
    ]
    return [f"tasks.blas_threads: {_shown(counts[0])} -> {_shown(counts[1])}"] if counts[0] != counts[1] else []


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value)) or "none"
    return "none" if value is None else str(value)


def _side_probe(side: ModelResults, record: dict[str, Any]) -> tuple[Any, str | None]:
    """A side's probe rows over all its tasks, or None with why not."""
    import pandas as pd

    frames = []
    for name, parsed in side.tasks.items():
        path = probe_path(parsed.path)
        checksums = record["tasks"].get(name, {}).get(CHECKSUMS)
        if not path.is_file():
            continue
        recorded = checksums.get(path.name) if isinstance(checksums, dict) else None
        if recorded is not None and checksum_problem(side.folder, {path.name: recorded}) is not None:
            return None, f"{path.name} changed after it was written"
        try:
            frames.append(read_probe(parsed.path))
        except CmtebError as exc:
            return None, str(exc)
    if not frames:
        return None, "it holds no probe (a run before probes, or a lexical baseline)"
    return pd.concat(frames, ignore_index=True), None


def _task_noise(record: dict[str, Any], task: str) -> float | None:
    entry = record["tasks"].get(task, {}).get("noise")
    return float(entry["points"]) if isinstance(entry, dict) and isinstance(entry.get("points"), int | float) else None


def _larger(a: float | None, b: float | None) -> float | None:
    present = [v for v in (a, b) if v is not None]
    return max(present) if present else None


def judge_noise(base: ModelResults, cand: ModelResults) -> NoiseJudgement:
    """The float-noise judgement of two result folders (see the module docstring)."""
    records = read_run_record(base.folder), read_run_record(cand.folder)
    lines: list[str] = []
    arithmetic = [r.get("arithmetic") for r in records]
    differences: list[str] = []
    if not all(isinstance(a, dict) for a in arithmetic):
        side = "baseline" if not isinstance(arithmetic[0], dict) else "candidate"
        lines.append(
            f"Arithmetic: unknown on the {side} side (recorded before runs named their CPU, libraries and "
            "versions): the noise band is unknown, not 0"
        )
    else:
        differences = arithmetic_differences(*arithmetic) + _thread_differences(*records)  # type: ignore[arg-type]
        lines.append(
            "Arithmetic: the same on both sides (CPU, ISA level, libraries, threads, versions)"
            if not differences
            else f"Arithmetic differs in {len(differences)}: " + "; ".join(differences)
        )
    model, drift, threshold = _probe_verdict(base, cand, records, bool(differences), lines)
    tasks = set(base.tasks) | set(cand.tasks)
    noise = {t: _larger(_task_noise(records[0], t), _task_noise(records[1], t)) for t in tasks}
    return NoiseJudgement(model, tuple(lines), tuple(differences), drift, threshold, noise)


def _probe_verdict(
    base: ModelResults, cand: ModelResults, records: tuple[dict, dict], differs: bool, lines: list[str]
) -> tuple[str, Drift | None, float | None]:
    """What the probes say of the model, appended to `lines` in one line."""
    (base_probe, base_why), (cand_probe, cand_why) = _side_probe(base, records[0]), _side_probe(cand, records[1])
    if base_probe is None or cand_probe is None:
        side, why = ("baseline", base_why) if base_probe is None else ("candidate", cand_why)
        lines.append(f"Probe: none usable on the {side} side ({why}): tasks judged by tolerance and paired test")
        return UNKNOWN, None, None
    drift = probe_drift(base_probe, cand_probe)
    thresholds = [r.get("probe", {}).get("threshold") for r in records]
    threshold = max((t for t in thresholds if isinstance(t, int | float)), default=None)
    if drift is None or threshold is None:
        lines.append("Probe: the two sides share no probed text: tasks judged by tolerance and paired test")
        return UNKNOWN, drift, threshold
    measured = f"largest drift {drift.largest:.2e}, median {drift.median:.2e} over {drift.rows} probed texts"
    if drift.largest == 0 and not differs:
        lines.append(f"Probe: same model, same arithmetic ({measured}): scores can differ only through the data")
        return SAME, drift, threshold
    if drift.largest <= threshold:
        what = "different arithmetic" if differs else "float noise under the same recorded arithmetic"
        lines.append(
            f"Probe: same model, {what}: {measured}, within the {threshold:.1e} fp32 arithmetic allows; each task "
            "is judged against the noise such a drift gives its score"
        )
        return ARITHMETIC, drift, threshold
    lines.append(
        f"Probe: the model or its settings changed ({measured}, beyond the {threshold:.1e} fp32 arithmetic allows)"
    )
    return CHANGED, drift, threshold
