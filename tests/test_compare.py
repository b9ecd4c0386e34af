"""`cmteb compare`, per-item values, the paired test, and --subsample."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from results_fixtures import write_model
from scipy import stats
from sklearn.metrics import average_precision_score

from cmteb.cli import main
from cmteb.io import atomic_write_json
from cmteb.report.significance import METRIC_FUNCTIONS, paired_test
from cmteb.results.files import RUN_RECORD, read_run_record
from cmteb.results.items import write_items
from cmteb.runner import run
from cmteb.tasks.build import build_task
from cmteb.tasks.registry import load_registry
from cmteb.tasks.subsample import subsample_retrieval

SCORES = {"ATEC": {"cosine_spearman": 0.60}, "T2Retrieval": {"ndcg_at_10": 0.70}, "TNews": {"accuracy": 0.50}}


def shifted(task: str, points: float) -> dict:
    out = {k: dict(v) for k, v in SCORES.items()}
    metric = next(iter(out[task]))
    out[task][metric] += points / 100
    return out


def test_identical_folders_exit_0(tmp_path, capsys):
    write_model(tmp_path / "a", "org/m", "r1", SCORES)
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "a"), "--model", "org/m"]) == 0
    assert "no regression" in capsys.readouterr().out


def test_injected_drop_of_two_points_exits_1_naming_the_task(tmp_path, capsys):
    base = write_model(tmp_path / "base", "org/m", "r1", SCORES)
    cand = write_model(tmp_path / "cand", "org/m", "r2", shifted("ATEC", -2.0))
    assert main(["compare", str(base), str(cand)]) == 1
    out = capsys.readouterr().out
    first_row = next(line for line in out.splitlines() if line.startswith("| ATEC"))
    assert "| -2.00 | regressed |" in first_row and "tolerance only" in first_row
    assert out.index("| ATEC") < out.index("| T2Retrieval"), "regressions come first"
    assert main(["compare", str(base), str(cand), "--format", "json"]) == 1
    assert json.loads(capsys.readouterr().out)["regressed"] == ["ATEC"]


def test_wobble_within_tolerance_exits_0(tmp_path):
    base = write_model(tmp_path / "base", "org/m", "r1", SCORES)
    cand = write_model(tmp_path / "cand", "org/m", "r2", shifted("T2Retrieval", -0.3))
    assert main(["compare", str(base), str(cand), "--tolerance", "0.5"]) == 0


def test_missing_tasks_fail_only_when_asked(tmp_path):
    base = write_model(tmp_path / "base", "org/m", "r1", SCORES)
    cand = write_model(tmp_path / "cand", "org/m", "r2", {"ATEC": SCORES["ATEC"]})
    assert main(["compare", str(base), str(cand)]) == 0
    assert main(["compare", str(base), str(cand), "--fail-on-missing"]) == 1


def _with_query_items(folder, values):
    """Give T2Retrieval per-query values and a score equal to their mean."""
    path = folder / "T2Retrieval.json"
    data = json.loads(path.read_text())
    data["scores"]["dev"][0]["ndcg_at_10"] = float(np.mean(values))
    atomic_write_json(path, data)
    write_items(
        path,
        [
            {
                "split": "dev",
                "subset": "default",
                "unit": "query",
                "id": f"q{i}",
                "metric": "ndcg_at_10",
                "value": float(v),
                "label": None,
            }
            for i, v in enumerate(values)
        ],
    )


def test_paired_test_decides_with_per_query_values(tmp_path, capsys):
    rng = np.random.default_rng(7)
    base_values = rng.uniform(0.3, 0.9, 300)
    real_drop = np.clip(base_values - 0.03 + rng.normal(0, 0.02, 300), 0, 1)
    base = write_model(tmp_path / "base", "org/m", "r1", SCORES)
    cand = write_model(tmp_path / "cand", "org/m", "r2", SCORES)
    _with_query_items(base, base_values)
    _with_query_items(cand, real_drop)
    assert main(["compare", str(base), str(cand), "--tasks", "T2Retrieval"]) == 1
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| T2Retrieval"))
    assert "regressed" in row and "paired permutation over 300 queries" in row
    # A drop beyond the tolerance on 8 queries that the test cannot tell from noise: not a regression.
    noisy_base = np.full(8, 0.5)
    noisy = noisy_base + np.array([-0.3, 0.28, -0.2, 0.15, -0.1, 0.05, 0.0, 0.04])
    _with_query_items(base, noisy_base)
    _with_query_items(cand, noisy)
    assert main(["compare", str(base), str(cand), "--tasks", "T2Retrieval"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| T2Retrieval"))
    assert "| -1.00 | ok |" in row


def test_paired_test_finds_a_known_effect_and_not_a_null_one():
    rng = np.random.default_rng(0)
    base = rng.uniform(0.2, 0.9, 400)
    effect = paired_test(base, base - 0.02 + rng.normal(0, 0.05, 400))
    null = paired_test(base, base + rng.normal(0, 0.05, 400))
    assert effect.p_value < 0.01 and effect.ci_high < 0 and effect.delta == pytest.approx(-0.02, abs=0.01)
    assert null.p_value > 0.05 and null.ci_low < 0 < null.ci_high
    gold = rng.uniform(0, 5, 500)
    good, worse = gold + rng.normal(0, 1, 500), gold + rng.normal(0, 2, 500)
    sts = paired_test(good, worse, metric="spearman", labels=gold, n_resamples=500)
    assert sts.delta == pytest.approx(stats.spearmanr(worse, gold)[0] - stats.spearmanr(good, gold)[0])
    assert sts.p_value < 0.01
    again = paired_test(good, worse, metric="spearman", labels=gold, n_resamples=500)
    assert again == sts, "fixed seeds: the same report every time"


def test_stored_items_reproduce_mtebs_scores(m3e_dir, samples_dir, tmp_path):
    tasks = ["T2Retrieval", "T2Reranking", "ATEC", "Ocnli", "TNews"]
    summary = run(
        str(m3e_dir),
        tasks=tasks,
        data_dir=samples_dir,
        output_dir=tmp_path,
        pooling="mean",
        show_progress=False,
        max_length=16,
    )
    for o in summary.outcomes:
        items = pd.read_parquet(o.path.with_suffix("").with_suffix(".items.parquet"))
        scores = o.result.scores[o.spec.splits[0]][0]
        if o.spec.type in ("Retrieval", "Reranking"):
            per_query = items[items["metric"] == o.spec.metric]["value"]
            assert per_query.mean() == pytest.approx(scores[o.spec.metric], abs=1e-5)
        elif o.spec.type == "STS":
            assert stats.spearmanr(items["value"], items["label"])[0] == pytest.approx(scores["cosine_spearman"])
        elif o.spec.type == "PairClassification":
            ap = average_precision_score(items["label"].astype(int), items["value"])
            assert ap == pytest.approx(scores["cosine_ap"], abs=1e-6)
            best = METRIC_FUNCTIONS["best_accuracy"](items["value"].to_numpy(), items["label"].to_numpy())
            assert best == pytest.approx(scores["cosine_accuracy"], abs=1e-6)
        else:
            assert items["value"].tolist() == [e["accuracy"] for e in scores["scores_per_experiment"]]


def test_subsample_is_deterministic_and_keeps_every_qrel(samples_dir):
    spec = load_registry().get("T2Retrieval")
    task = build_task(spec, samples_dir)
    task.load_data()
    split = task.dataset["default"]["dev"]
    a = subsample_retrieval(split, 5, 20, "seed")
    b = subsample_retrieval(split, 5, 20, "seed")
    assert a["queries"]["id"] == b["queries"]["id"] and a["corpus"]["id"] == b["corpus"]["id"]
    assert len(a["queries"]) == 5 and len(a["relevant_docs"]) == 5
    corpus_ids = set(a["corpus"]["id"])
    assert all(set(docs) <= corpus_ids for docs in a["relevant_docs"].values())
    assert len(corpus_ids) == 5 + 20
    other = subsample_retrieval(split, 5, 20, "other seed")
    assert other["queries"]["id"] != a["queries"]["id"]


def test_subsampled_runs_record_n_and_refuse_full_comparison(tiny_bert, samples_dir, tmp_path, capsys):
    common = dict(
        tasks=["ATEC", "T2Reranking", "Ocnli"], data_dir=samples_dir, show_progress=False, model_name="org/tiny"
    )
    quick = run(str(tiny_bert), output_dir=tmp_path / "quick", subsample=6, **common)
    full = run(str(tiny_bert), output_dir=tmp_path / "full", **common)
    record = read_run_record(quick.output_dir)
    assert record["tasks"]["ATEC"]["subsample"] == 6
    items = pd.read_parquet(quick.output_dir / "ATEC.items.parquet")
    assert len(items) == 6
    again = run(str(tiny_bert), output_dir=tmp_path / "again", subsample=6, **common)
    assert [o.score for o in again.outcomes] == [o.score for o in quick.outcomes]
    assert main(["compare", str(full.output_dir), str(quick.output_dir)]) == 2
    assert "--subsample" in capsys.readouterr().err


def _scores_of(folder) -> dict[str, dict]:
    return {p.name: json.loads(p.read_text())["scores"] for p in folder.glob("*.json") if p.name != "model_meta.json"}


def test_batch_invariant_encoding_is_bit_identical_whatever_else_is_encoded(m3e_dir):
    from cmteb.models.encoder import BGEEncoder

    encoder = BGEEncoder.load(str(m3e_dir), pooling="mean")
    texts = [
        "今天天气很好",
        "这家店的服务态度非常差，再也不来了",
        "北京是中国的首都",
        "好",
        "机器学习是人工智能的一个分支",
    ]
    alone = np.stack([encoder.encode([t], batch_size=1)[0] for t in texts])
    mixed = encoder.encode([*reversed(texts), "另一段完全不同而且长得多的文字，用来改变批次的填充长度"], batch_size=1)
    assert np.array_equal(alone, mixed[: len(texts)][::-1])
    shared = encoder.encode(texts, batch_size=32)  # one padded batch: float noise of the order of 1e-7
    print(f"\nshared batch vs one text per pass: max difference {np.abs(shared - alone).max():.2e}")
    assert np.abs(shared - alone).max() < 1e-5


def test_quick_runs_differing_in_cache_batch_size_and_order_are_identical(tiny_bert, samples_dir, tmp_path, capsys):
    """Only cache state, batch size and task order differ: bit-identical scores and probes, never a regression;
    evaluations on different BLAS thread counts are named as an arithmetic difference."""
    tasks = ["CLSClusteringS2S", "TNews", "AFQMC", "T2Reranking"]
    common = dict(data_dir=samples_dir, show_progress=False, subsample=20)
    first = run(str(tiny_bert), tasks=tasks, output_dir=tmp_path / "a", cache_dir=tmp_path / "cache-a", **common)
    # Another cache, filled first by a larger quick run, so that the second run's texts come from it.
    run(
        str(tiny_bert),
        tasks=tasks,
        output_dir=tmp_path / "warm",
        cache_dir=tmp_path / "cache-b",
        **{**common, "subsample": 30},
    )
    second = run(
        str(tiny_bert),
        tasks=list(reversed(tasks)),
        output_dir=tmp_path / "b",
        cache_dir=tmp_path / "cache-b",
        batch_size=4,
        **common,
    )
    assert read_run_record(second.output_dir)["stats"]["cache_hits"] > 0
    assert _scores_of(first.output_dir) == _scores_of(second.output_dir)
    assert main(["compare", str(first.output_dir), str(second.output_dir)]) == 0
    report = capsys.readouterr().out
    assert "0 regressed" in report and "Arithmetic: the same on both sides" in report
    assert "Probe: same model, same arithmetic (largest drift 0.00e+00" in report

    # scikit-learn's classification fits differ in their last digits with the BLAS thread count: the report
    # says so when the two runs evaluated with different counts (each task records its own).
    record = read_run_record(second.output_dir)
    threads = record["tasks"]["TNews"]["blas_threads"]
    assert isinstance(threads, int) and threads >= 1
    for entry in record["tasks"].values():
        entry["blas_threads"] = threads + 1
    atomic_write_json(second.output_dir / RUN_RECORD, record)
    assert main(["compare", str(first.output_dir), str(second.output_dir)]) == 0
    report = capsys.readouterr().out
    assert f"Arithmetic differs in 1: tasks.blas_threads: {threads} -> {threads + 1}" in report
    assert "Probe: same model, float noise under the same recorded arithmetic" not in report  # the probes are equal
    assert "Probe: same model, different arithmetic: largest drift 0.00e+00" in report


@pytest.mark.parametrize(
    ("points", "status", "exit_code"),
    [(-0.49, "ok", 0), (-0.51, "regressed", 1), (0.49, "ok", 0), (0.51, "improved", 0)],
)
def test_the_default_tolerance_decides_on_both_sides_of_it(tmp_path, capsys, points, status, exit_code):
    """No --tolerance: 0.5 points. A rise beyond it is "improved", which never fails the check."""
    base = write_model(tmp_path / "base", "org/m", "r1", SCORES)
    cand = write_model(tmp_path / "cand", "org/m", "r2", shifted("ATEC", points))
    assert main(["compare", str(base), str(cand)]) == exit_code
    report = capsys.readouterr().out
    row = next(line for line in report.splitlines() if line.startswith("| ATEC"))
    assert f"| {points:+.2f} | {status} |" in row
    counts = {s: int(report.split(f" {s}")[0].rsplit(" ", 1)[-1]) for s in ("regressed", "improved", "ok")}
    assert counts == {
        "regressed": int(status == "regressed"),
        "improved": int(status == "improved"),
        "ok": 2 + (status == "ok"),
    }


def test_a_task_on_one_side_only_is_missing_and_fails_only_when_asked(tmp_path, capsys):
    base = write_model(tmp_path / "base", "org/m", "r1", SCORES)
    cand = write_model(tmp_path / "cand", "org/m", "r2", {k: v for k, v in SCORES.items() if k != "TNews"})
    assert main(["compare", str(base), str(cand)]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| TNews"))
    assert "| 50.00 | — | — | missing |" in row
    assert main(["compare", str(base), str(cand), "--fail-on-missing"]) == 1


def test_the_paired_test_turns_the_same_drop_into_a_regression_or_not(tmp_path, capsys):
    """One drop of 1.0 point on 40 queries: spread evenly over the queries it is significant (regressed); made
    of a few large moves both ways it is not (ok). The tolerance alone would call both regressions."""
    base = write_model(tmp_path / "base", "org/m", "r1", SCORES)
    cand = write_model(tmp_path / "cand", "org/m", "r2", SCORES)
    start = np.full(40, 0.6)
    _with_query_items(base, start)
    _with_query_items(cand, start - 0.01)  # every query 1 point lower
    assert main(["compare", str(base), str(cand), "--tasks", "T2Retrieval"]) == 1
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| T2Retrieval"))
    assert "| -1.00 | regressed |" in row
    noisy = start.copy()
    noisy[:4] += [0.3, -0.3, 0.25, -0.65]  # the same mean drop, carried by four queries moving both ways
    _with_query_items(cand, noisy)
    assert main(["compare", str(base), str(cand), "--tasks", "T2Retrieval"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| T2Retrieval"))
    assert "| -1.00 | ok |" in row


def test_compare_names_the_settings_that_differ_and_takes_the_names_model_card_takes(
    tiny_bert, samples_dir, tmp_path, capsys
):
    common = dict(tasks=["ATEC"], data_dir=samples_dir, show_progress=False, use_cache=False)
    run(str(tiny_bert), output_dir=tmp_path / "base", **common)
    run(str(tiny_bert), output_dir=tmp_path / "cand", max_length=8, **common)
    capsys.readouterr()
    # The roots, with --model as `cmteb run --model` was given (a path), as model-card takes it.
    assert main(["compare", str(tmp_path / "base"), str(tmp_path / "cand"), "--model", str(tiny_bert)]) in (0, 1)
    report = capsys.readouterr().out
    assert re.search(r"Settings differ in 1: max_length: \d+ -> 8\.", report), report
    assert "max length 8)" in report.split("\n")[2], "the candidate's heading says how it ran"
    assert main(["compare", str(tmp_path / "base"), str(tmp_path / "base"), "--model", "local/tiny-bert0"]) == 0
    assert "Settings: the same on both sides." in capsys.readouterr().out


def test_the_json_report_holds_every_field_of_the_comparison(tmp_path, capsys):
    base = write_model(tmp_path / "基线", "org/m", "r1", SCORES)
    cand = write_model(tmp_path / "cand", "org/m", "r2", shifted("ATEC", -2.0))
    assert main(["compare", str(base), str(cand), "--format", "json", "--alpha", "0.01"]) == 1
    text = capsys.readouterr().out
    assert text.startswith('{\n  "baseline": {\n    "model": "org/m",') and "基线" in text  # indented, UTF-8 as is
    report = json.loads(text)
    lines = report["noise"].pop("lines")
    assert [line.split(":")[0] for line in lines] == ["Arithmetic", "Probe"]
    side = {"model": "org/m", "folder": None}
    expected_tasks = []
    for task, type_ in (("ATEC", "STS"), ("T2Retrieval", "Retrieval"), ("TNews", "Classification")):
        metric, value = next(iter(SCORES[task].items()))
        after = value * 100 - (2.0 if task == "ATEC" else 0.0)
        expected_tasks.append(
            {
                "task": task,
                "type": type_,
                "metric": metric,
                "baseline": pytest.approx(value * 100),
                "candidate": pytest.approx(after),
                "delta": pytest.approx(after - value * 100),
                "status": "regressed" if task == "ATEC" else "ok",
                "p_value": None,
                "ci_low": None,
                "ci_high": None,
                "test": "tolerance only",
                "noise": None,
                "detectable": 0.5,
            }
        )
    assert report == {
        "baseline": {**side, "revision": "r1", "folder": str(base)},
        "candidate": {**side, "revision": "r2", "folder": str(cand)},
        "tolerance": 0.5,
        "alpha": 0.01,
        "noise": {"model": "unknown", "arithmetic_differences": [], "probe_drift": None, "probe_threshold": None},
        "settings_differences": [],
        "avg": {"baseline": None, "candidate": None},  # three tasks of 31: no average to show
        "regressed": ["ATEC"],
        "tasks": expected_tasks,
    }


def _average_precision_by_hand(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mean over the positives of the precision at each one's rank (no ties in `scores`)."""
    ranked = labels[np.argsort(-scores)]
    hits = np.cumsum(ranked)
    return float(np.mean([hits[i] / (i + 1) for i in np.flatnonzero(ranked)]))


def test_the_paired_test_of_pair_classification_ap_measures_the_ap_difference():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 300)
    baseline = labels * 0.4 + rng.normal(0, 0.3, 300)
    candidate = labels * 0.2 + rng.normal(0, 0.3, 300)
    result = paired_test(baseline, candidate, metric="ap", labels=labels.astype(bool), n_resamples=200)
    expected = _average_precision_by_hand(candidate, labels) - _average_precision_by_hand(baseline, labels)
    assert expected < -0.05
    assert result.delta == pytest.approx(expected, abs=1e-12)
    assert result.ci_low <= result.delta <= result.ci_high and result.n == 300


def _strict_json(text: str) -> dict:
    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_the_json_report_is_strict_json_with_nan_as_null(tmp_path):
    from dataclasses import replace

    from cmteb.report.compare import Comparison, compare_results, resolve_folder, to_json
    from cmteb.report.noise import judge_noise

    write_model(tmp_path / "base", "org/m", "r1", SCORES)
    base = resolve_folder(tmp_path / "base", None)
    noise = judge_noise(base, base)
    rows = compare_results(base, base, tolerance=0.5, alpha=0.05, tasks=None, noise=noise)
    rows[0] = replace(rows[0], delta=float("nan"), p_value=float("nan"))
    report = _strict_json(to_json(Comparison(rows, base, base, 0.5, 0.05, noise)))
    assert (report["tasks"][0]["delta"], report["tasks"][0]["p_value"]) == (None, None)
    assert report["tasks"][1]["delta"] == 0.0


def test_the_json_report_gives_the_probes_drift_between_two_runs(capsys):
    baseline = Path(__file__).resolve().parent.parent / "results" / "baselines"
    assert main(["compare", str(baseline), str(baseline), "--format", "json"]) == 0
    noise = _strict_json(capsys.readouterr().out)["noise"]
    assert noise["probe_drift"]["largest"] == noise["probe_drift"]["median"] == 0.0
    assert noise["probe_drift"]["rows"] > 0
    assert noise["probe_threshold"] > 0
