"""`cmteb compare`: did quality drop, for real? A per-task report and an exit status for CI.

A task regressed when its score dropped by more than its smallest detectable drop (the tolerance, or
twice the task's measured float noise where that is larger: `report/noise.py`) and, where both sides kept
per-query/per-item values, the paired test finds the drop significant at alpha. Without per-item values
the drop alone decides, and the report says so. Before the tasks, the report names every difference in
the two runs' arithmetic and what the embedding probes say of the model.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cmteb.errors import CmtebError
from cmteb.report.averages import Averages, protocol_averages, task_points
from cmteb.report.noise import NOISE_MARGIN, NoiseJudgement, judge_noise
from cmteb.report.significance import METRIC_FUNCTIONS, paired_test
from cmteb.results.files import read_run_record
from cmteb.results.items import read_items
from cmteb.results.reader import ModelResults, ParsedResult, collect_results, refuse_unverified
from cmteb.tasks.registry import TaskSpec
from cmteb.tasks.types import task_type

PAIR_RESAMPLES = 1000  # recomputing Spearman/AP per resample is costlier than a mean
#: Per-item values and the stored score agree to float noise and the result file's 5-6 decimals.
ITEMS_TOLERANCE = 2e-4


@dataclass
class TaskComparison:
    """One row of the report."""

    task: str
    type: str
    metric: str
    baseline: float | None  # points
    candidate: float | None
    delta: float | None
    status: str  # ok, improved, regressed, missing
    p_value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    test: str = "tolerance only"
    noise: float | None = None  # float noise measured for the task, points (None: not measured)
    detectable: float = 0.0  # the smallest drop called a regression: the tolerance, or NOISE_MARGIN x noise


def resolve_folder(path: Path, model: str | None, allow_unverified: bool = False) -> ModelResults:
    """A result folder: `path` itself, or the one folder for `model` (its name, or what `cmteb run --model` was
    given) under a results root; one whose run record is missing or damaged only with `allow_unverified`."""
    found = collect_results([path])
    if model is not None:
        found = [r for r in found if r.answers_to(model)]
    if not found:
        what = f"results of {model}" if model else "results"
        raise CmtebError(f"no {what} under {path}: pass a result folder written by `cmteb run`")
    if len(found) > 1:
        names = ", ".join(sorted(f"{r.folder} ({r.protocol})" for r in found))
        raise CmtebError(f"{path} holds several result folders ({names}): pass one folder or --model")
    refuse_unverified(found, allow_unverified)
    return found[0]


def _subsample_of(results: ModelResults) -> dict[str, int | None]:
    """Per task, the items `--subsample` kept (a run recorded before types scaled it: the N asked for)."""
    tasks = read_run_record(results.folder)["tasks"]
    return {name: _items_kept(tasks.get(name, {})) for name in results.tasks}


def _kept(items: int | None) -> str:
    return "ran on every item" if items is None else f"kept {items} items of each split"


def settings_differences(base: ModelResults, cand: ModelResults) -> list[str]:
    """The run settings (`cmteb run` options, resolved) that differ between the two sides, as `name: a -> b`:
    what besides the model may explain a difference. Speed-only settings (device, batching, workers) are in
    the list too: they move scores by float noise at most."""
    sides = [_run_settings(results) for results in (base, cand)]
    names = sorted(set(sides[0]) | set(sides[1]))
    return [
        f"{n}: {sides[0].get(n, '—')} -> {sides[1].get(n, '—')}" for n in names if sides[0].get(n) != sides[1].get(n)
    ]


def _run_settings(results: ModelResults) -> dict[str, Any]:
    """A result folder's settings: those its run record's entries hold (the first task's), and the variant's
    that are not among them (subsample, instruction)."""
    entries = read_run_record(results.folder)["tasks"].values()
    settings = next((e["settings"] for e in entries if isinstance(e.get("settings"), dict)), {})
    return {**{k: v for k, v in results.variant.items() if k not in settings}, **settings}


def _items_kept(entry: dict) -> int | None:
    return entry.get("subsample_items", entry.get("subsample"))


def _items_problem(spec: TaskSpec, parsed: ParsedResult, items: pd.DataFrame) -> str | None:
    """Where per-item values do not reproduce the score stored beside them (one was changed), or None.

    Checked per split and per stored metric: the mean of per-query nDCG@10 or AP, the Spearman or AP
    of per-pair cosine similarities, the mean of per-experiment accuracies or V-measures.
    """
    rules = task_type(spec.type)
    statistic = METRIC_FUNCTIONS[rules.statistic]
    for (split, metric), rows in items.groupby(["split", "metric"], sort=True):
        entries = parsed.splits.get(str(split), [])
        if len(entries) != 1 or rows["subset"].nunique() != 1:  # several subsets: not matched one to one
            continue
        key = f"cosine_{rules.statistic}" if metric == "cosine" else str(metric)
        stored = entries[0].get(key)
        if stored is None or not math.isfinite(stored):
            continue
        labels = rows["label"].astype(float).to_numpy() if rules.statistic != "mean" else np.zeros(len(rows))
        value = statistic(rows["value"].astype(float).to_numpy(), labels)
        if abs(value - stored) > ITEMS_TOLERANCE:
            return f"{split} {key} is {100 * value:.2f} from the items but {100 * stored:.2f} in the result file"
    return None


def _checked_items(side: str, spec: TaskSpec, results: ModelResults) -> pd.DataFrame | None:
    """A side's per-item values, refused when they do not reproduce its stored score."""
    parsed = results.tasks[spec.name]
    items = read_items(parsed.path)
    problem = None if items is None else _items_problem(spec, parsed, items)
    if problem is not None:
        raise CmtebError(
            f"{side} {spec.name}: {problem}: one of {parsed.path.name} and its items file was changed; rerun the task"
        )
    return items


def _paired(spec: TaskSpec, base: ModelResults, cand: ModelResults, alpha: float) -> tuple | None:
    base_items = _checked_items("baseline", spec, base)
    cand_items = _checked_items("candidate", spec, cand)
    if base_items is None or cand_items is None:
        return None
    rules = task_type(spec.type)
    unit_metric = rules.item_metric or spec.metric
    keys = ["split", "subset", "unit", "id"]
    b = base_items[base_items["metric"] == unit_metric]
    c = cand_items[cand_items["metric"] == unit_metric]
    merged = b.merge(c, on=keys, suffixes=("_b", "_c"))
    if merged.empty or len(merged) < 2:
        return None
    groups = pd.factorize(merged["split"] + "/" + merged["subset"])[0]
    metric = rules.paired_statistic(spec.metric)
    result = paired_test(
        merged["value_b"].to_numpy(),
        merged["value_c"].to_numpy(),
        metric=metric,
        labels=merged["label_b"].astype(float).to_numpy() if metric != "mean" else None,
        groups=groups,
        confidence=1 - alpha,
        n_resamples=PAIR_RESAMPLES if metric != "mean" else 2000,
    )
    unit = {"query": "queries", "pair": "pairs", "experiment": "experiments"}[merged["unit"].iloc[0]]
    return result, f"paired permutation over {result.n} {unit}"


def compare_results(
    base: ModelResults,
    cand: ModelResults,
    *,
    tolerance: float = 0.5,
    alpha: float = 0.05,
    tasks: list[str] | None = None,
    noise: NoiseJudgement | None = None,
) -> list[TaskComparison]:
    """Compare two result folders task by task (regressions first); `noise`: `judge_noise(base, cand)`."""
    if base.protocol != cand.protocol:
        raise CmtebError(
            f"baseline was produced under protocol {base.protocol} and candidate under {cand.protocol}: "
            "compare results of the same protocol (`cmteb run --protocol`)"
        )
    base_sub, cand_sub = _subsample_of(base), _subsample_of(cand)
    noise = noise or judge_noise(base, cand)
    protocol = base.resolved
    known = protocol.registry()
    names = (
        [known.get(t).name for t in tasks]
        if tasks
        else [t.name for t in protocol.all_tasks if t.name in base.tasks or t.name in cand.tasks]
    )
    rows = []
    for name in names:
        spec = protocol.get(name)
        if name in base.tasks and name in cand.tasks and base_sub.get(name) != cand_sub.get(name):
            raise CmtebError(
                f"{name}: the baseline {_kept(base_sub.get(name))} and the candidate {_kept(cand_sub.get(name))}: "
                "compare results of the same --subsample (rerun the baseline with this cmteb when its version "
                "changed how many items a subsample keeps)"
            )
        b, c = base.task_score(name), cand.task_score(name)
        _refuse_unusable(name, spec, ("baseline", base, b), ("candidate", cand, c))
        task_noise = noise.noise.get(name)
        detectable = max(tolerance, NOISE_MARGIN * (task_noise or 0.0))
        if b is None or c is None:
            row = TaskComparison(name, spec.type, spec.metric, _pts(b), _pts(c), None, "missing", test="—")
            rows.append(replace(row, noise=task_noise, detectable=detectable))
            continue
        rows.append(_judged(spec, base, cand, (b, c), alpha, task_noise, detectable))
    order = {"regressed": 0, "missing": 1, "improved": 2, "ok": 3}
    return sorted(rows, key=lambda r: order[r.status])


def _judged(
    spec: TaskSpec,
    base: ModelResults,
    cand: ModelResults,
    scores: tuple[float, float],
    alpha: float,
    noise: float | None,
    detectable: float,
) -> TaskComparison:
    """One task's row: its change against its smallest detectable drop, and the paired test where both sides
    kept per-item values."""
    b, c = scores
    delta = 100 * (c - b)
    row = TaskComparison(spec.name, spec.type, spec.metric, 100 * b, 100 * c, delta, "ok")
    row.noise, row.detectable = noise, detectable
    paired = _paired(spec, base, cand, alpha)
    significant = True
    if paired is not None:
        test, row.test = paired
        row.p_value, row.ci_low, row.ci_high = test.p_value, 100 * test.ci_low, 100 * test.ci_high
        significant = test.p_value < alpha
    if delta < -detectable and significant:
        row.status = "regressed"
    elif delta > detectable and significant:
        row.status = "improved"
    return row


def _refuse_unusable(name: str, spec: TaskSpec, *sides: tuple[str, ModelResults, float | None]) -> None:
    """A result file that is there but holds no usable score is an error, never a quietly missing task."""
    for side, results, value in sides:
        if name in results.tasks and value is None:
            raise CmtebError(
                f"{side} result file {results.tasks[name].path} holds no usable {spec.metric} score (no scores, or "
                "not a number): rerun the task or fix the file"
            )


def compare_averages(base: ModelResults, cand: ModelResults) -> tuple[Averages, Averages]:
    """Both sides' Avg and category means, by their protocol's one averaging rule."""
    protocol = base.resolved
    return tuple(  # type: ignore[return-value]
        protocol_averages(protocol, {n: task_points(protocol, v) for n, v in side.task_scores().items()})
        for side in (base, cand)
    )


def _pts(value: float | None) -> float | None:
    return None if value is None else 100 * value


def _fmt(value: float | None, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:+.2f}" if signed else f"{value:.2f}"


@dataclass(frozen=True)
class Comparison:
    """What a report shows: the per-task rows, both sides, the settings that judged them and the float noise."""

    rows: list[TaskComparison]
    base: ModelResults
    cand: ModelResults
    tolerance: float
    alpha: float
    noise: NoiseJudgement


def to_markdown(comparison: Comparison) -> str:
    """A report fit for a pull-request comment: verdict, float noise, then regressions first."""
    rows, base, cand, noise = comparison.rows, comparison.base, comparison.cand, comparison.noise
    tolerance, alpha = comparison.tolerance, comparison.alpha
    counts = {s: sum(r.status == s for r in rows) for s in ("regressed", "improved", "missing", "ok")}
    verdict = "❌ quality dropped" if counts["regressed"] else "✅ no regression"
    base_avg, cand_avg = compare_averages(base, cand)
    lines = [
        f"### cmteb compare: {verdict}",
        "",
        f"Baseline `{base.model}` ({_named(base)}) vs candidate `{cand.model}` ({_named(cand)}). "
        f"{len(rows)} tasks: {counts['regressed']} regressed, {counts['improved']} improved, "
        f"{counts['missing']} missing, {counts['ok']} ok. A regression is a drop of more than the task's smallest "
        f"detectable drop (the tolerance, {tolerance} points, or twice the task's measured float noise where larger) "
        f"that the paired test finds significant at alpha={alpha}; tasks without per-item values on both sides "
        "are judged by the drop alone (column test).",
        "",
        f"Avg ({base.protocol}): baseline {base_avg.avg.cell()}, candidate {cand_avg.avg.cell()}.",
        "",
        _settings_line(base, cand),
        "",
        *[f"- {line}" for line in noise.lines],
        "",
        "| task | type | metric | baseline | candidate | delta | status | noise | detectable drop | p-value "
        "| CI of delta | test |",
        "|:--|:--|:--|--:|--:|--:|:--|--:|--:|--:|:--|:--|",
    ]
    for r in rows:
        ci = f"[{_fmt(r.ci_low, True)}, {_fmt(r.ci_high, True)}]" if r.ci_low is not None else "—"
        p = f"{r.p_value:.4f}" if r.p_value is not None else "—"
        lines.append(
            f"| {r.task} | {r.type} | {r.metric} | {_fmt(r.baseline)} | {_fmt(r.candidate)} | "
            f"{_fmt(r.delta, True)} | {r.status} | {_fmt(r.noise)} | {_fmt(r.detectable)} | {p} | {ci} | {r.test} |"
        )
    return "\n".join(lines) + "\n"


def _named(results: ModelResults) -> str:
    """Revision, and the non-default settings a folder's results were measured with."""
    return f"{results.revision}, {results.settings_text}" if results.settings_text else str(results.revision)


def _settings_line(base: ModelResults, cand: ModelResults) -> str:
    differences = settings_differences(base, cand)
    if not differences:
        return "Settings: the same on both sides."
    return f"Settings differ in {len(differences)}: " + "; ".join(differences) + "."


def to_json(comparison: Comparison) -> str:
    """The report for machines."""
    rows, base, cand, noise = comparison.rows, comparison.base, comparison.cand, comparison.noise
    report = {
        "baseline": {"model": base.model, "revision": base.revision, "folder": str(base.folder)},
        "candidate": {"model": cand.model, "revision": cand.revision, "folder": str(cand.folder)},
        "tolerance": comparison.tolerance,
        "alpha": comparison.alpha,
        "noise": {
            "model": noise.model,
            "arithmetic_differences": list(noise.differences),
            "probe_drift": asdict(noise.drift) if noise.drift is not None else None,
            "probe_threshold": noise.threshold,
            "lines": list(noise.lines),
        },
        "settings_differences": settings_differences(base, cand),
        "avg": dict(zip(("baseline", "candidate"), (a.avg.value for a in compare_averages(base, cand)), strict=True)),
        "regressed": [r.task for r in rows if r.status == "regressed"],
        "tasks": [asdict(r) for r in rows],
    }
    # json.dumps writes a NaN as `NaN`, which strict JSON parsers refuse: a value that is not a number is null.
    return json.dumps(_nan_as_null(report), indent=2, ensure_ascii=False, allow_nan=False)


def _nan_as_null(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _nan_as_null(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [_nan_as_null(inner) for inner in value]
    return None if isinstance(value, float) and math.isnan(value) else value
