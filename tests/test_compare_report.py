"""`cmteb compare`'s report line by line, the settings it names, and the check that per-item values still
reproduce the score beside them (tests/test_compare.py checks the verdicts through the command)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from results_fixtures import edit_run_record, write_model, write_protocol_model, write_run_record
from scipy import stats

from cmteb.errors import CmtebError
from cmteb.io import atomic_write_json
from cmteb.report.compare import (
    ITEMS_TOLERANCE,
    PAIR_RESAMPLES,
    Comparison,
    TaskComparison,
    compare_results,
    resolve_folder,
    settings_differences,
    to_markdown,
)
from cmteb.report.noise import NoiseJudgement
from cmteb.report.significance import paired_test
from cmteb.results.files import RUN_RECORD
from cmteb.results.items import write_items

SCORES = {"ATEC": {"cosine_spearman": 0.60}, "T2Retrieval": {"ndcg_at_10": 0.70}}
QUIET = NoiseJudgement("unknown", ("Arithmetic: not recorded.", "Probe: none."), (), None, None, {})


def _folders(tmp_path: Path) -> tuple:
    base = resolve_folder(write_model(tmp_path / "base", "org/m", "r1", SCORES), None)
    cand = resolve_folder(write_model(tmp_path / "cand", "org/m", "r2", SCORES), None)
    return base, cand


def test_the_report_reads_line_by_line(tmp_path):
    base, cand = _folders(tmp_path)
    rows = [
        TaskComparison("ATEC", "STS", "cosine_spearman", 60.0, 57.5, -2.5, "regressed", 0.0123, -3.25, -1.5,
                       "paired permutation over 40 pairs", 0.125, 0.5),
        TaskComparison("TNews", "Classification", "accuracy", 50.0, None, None, "missing", test="—", detectable=0.5),
        TaskComparison("T2Retrieval", "Retrieval", "ndcg_at_10", 70.0, 70.25, 0.25, "ok", 0.2, 0.1, 0.4,
                       "paired permutation over 9 queries", detectable=0.5),
    ]  # fmt: skip
    report = to_markdown(Comparison(rows, base, cand, 0.5, 0.05, QUIET))
    assert report.split("\n") == [
        "### cmteb compare: ❌ quality dropped",
        "",
        "Baseline `org/m` (r1) vs candidate `org/m` (r2). 3 tasks: 1 regressed, 0 improved, 1 missing, 1 ok. A "
        "regression is a drop of more than the task's smallest detectable drop (the tolerance, 0.5 points, or twice "
        "the task's measured float noise where larger) that the paired test finds significant at alpha=0.05; tasks "
        "without per-item values on both sides are judged by the drop alone (column test).",
        "",
        "Avg (unrecorded): baseline partial: 2 of 31 tasks, candidate partial: 2 of 31 tasks.",
        "",
        "Settings: the same on both sides.",
        "",
        "- Arithmetic: not recorded.",
        "- Probe: none.",
        "",
        "| task | type | metric | baseline | candidate | delta | status | noise | detectable drop | p-value | CI of "
        "delta | test |",
        "|:--|:--|:--|--:|--:|--:|:--|--:|--:|--:|:--|:--|",
        "| ATEC | STS | cosine_spearman | 60.00 | 57.50 | -2.50 | regressed | 0.12 | 0.50 | 0.0123 | [-3.25, -1.50] "
        "| paired permutation over 40 pairs |",
        "| TNews | Classification | accuracy | 50.00 | — | — | missing | — | 0.50 | — | — | — |",
        "| T2Retrieval | Retrieval | ndcg_at_10 | 70.00 | 70.25 | +0.25 | ok | — | 0.50 | 0.2000 | [+0.10, +0.40] | "
        "paired permutation over 9 queries |",
        "",
    ]
    calm = to_markdown(Comparison(rows[1:], base, cand, 0.5, 0.05, QUIET))
    assert calm.startswith("### cmteb compare: ✅ no regression\n")


def _with_settings(folder: Path, settings: dict, variant: dict | None = None) -> None:
    def edit(record: dict) -> None:
        for entry in record["tasks"].values():
            entry["settings"] = settings
        record["variant"] = variant or {}

    edit_run_record(folder, edit)


def test_the_settings_that_differ_are_named_with_both_values(tmp_path):
    base_folder = write_protocol_model(tmp_path / "base", "org/m", "cmteb-31")
    cand_folder = write_protocol_model(tmp_path / "cand", "org/m", "cmteb-31")
    _with_settings(base_folder, {"batch_size": 8, "max_length": 512, "pooling": "cls"})
    _with_settings(cand_folder, {"batch_size": 16, "max_length": 512, "normalize": False}, {"subsample": 20})
    base, cand = resolve_folder(base_folder, None), resolve_folder(cand_folder, None)
    assert settings_differences(base, cand) == [
        "batch_size: 8 -> 16",
        "normalize: — -> False",
        "pooling: cls -> —",
        "subsample: — -> 20",
    ]
    assert settings_differences(cand, cand) == []
    report = to_markdown(Comparison([], base, cand, 0.5, 0.05, QUIET))
    assert report.split("\n")[6] == (
        "Settings differ in 4: batch_size: 8 -> 16; normalize: — -> False; pooling: cls -> —; subsample: — -> 20."
    )
    assert "vs candidate `org/m` (r1, subsample 20)." in report.split("\n")[2]


def _side(tmp_path: Path, side: str) -> Path:
    """The result folder `_folders` wrote for `side` ("base" or "cand")."""
    return tmp_path / side / "org__m" / ("r1" if side == "base" else "r2")


def _items(folder: Path, task: str, rows: list[dict]) -> None:
    write_items(folder / f"{task}.json", [{"subset": "default", "label": None, **row} for row in rows])


def _set_score(folder: Path, task: str, split: str, metric: str, value: float, extra_entry: bool = False) -> None:
    path = folder / f"{task}.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["scores"][split] = [{metric: value, "main_score": value, "hf_subset": "default"}]
    if extra_entry:
        data["scores"][split].append({metric: value, "main_score": value, "hf_subset": "other"})
    atomic_write_json(path, data)


def _queries(values, split: str = "dev") -> list[dict]:
    return [
        {"split": split, "unit": "query", "id": f"q{i}", "metric": "ndcg_at_10", "value": v}
        for i, v in enumerate(values)
    ]


def _compare(tmp_path, task):
    base = resolve_folder(tmp_path / "base", None)
    cand = resolve_folder(tmp_path / "cand", None)
    return compare_results(base, cand, tasks=[task])


@pytest.mark.parametrize(
    ("offset", "accepted"), [(0.0, True), (0.75 * ITEMS_TOLERANCE, True), (1.5 * ITEMS_TOLERANCE, False)]
)
def test_per_query_values_must_reproduce_the_stored_mean(offset, accepted, tmp_path):
    """nDCG@10 is the mean of the per-query values: a result file edited by more than float noise is refused."""
    _base, _cand = _folders(tmp_path)
    values = [0.5, 0.7, 0.9, 0.6]
    for side in ("base", "cand"):
        _set_score(_side(tmp_path, side), "T2Retrieval", "dev", "ndcg_at_10", 0.675 + (offset if side == "cand" else 0))
        _items(_side(tmp_path, side), "T2Retrieval", _queries(values))
    if accepted:
        [row] = _compare(tmp_path, "T2Retrieval")
        assert row.test == "paired permutation over 4 queries"
        return
    with pytest.raises(CmtebError) as err:
        _compare(tmp_path, "T2Retrieval")
    assert str(err.value) == (
        "candidate T2Retrieval: dev ndcg_at_10 is 67.50 from the items but 67.53 in the result file: one of "
        "T2Retrieval.json and its items file was changed; rerun the task"
    )


def _pairs(split: str, cosines, gold) -> list[dict]:
    return [
        {"split": split, "unit": "pair", "id": f"p{i}", "metric": "cosine", "value": c, "label": g}
        for i, (c, g) in enumerate(zip(cosines, gold, strict=True))
    ]


COSINES, GOLD = [0.9, 0.2, 0.5, 0.4, 0.8], [4.0, 1.0, 2.0, 3.0, 5.0]


def test_per_pair_cosines_must_reproduce_the_stored_spearman(tmp_path):
    """STS: Spearman's rho of the per-pair cosines against the gold scores, per split; the splits are checked in
    name order, so the first named wrong split is the one the message gives."""
    _folders(tmp_path)
    rho = stats.spearmanr(COSINES, GOLD).statistic
    for side in ("base", "cand"):
        _set_score(_side(tmp_path, side), "ATEC", "test", "cosine_spearman", rho)
        _set_score(_side(tmp_path, side), "ATEC", "validation", "cosine_spearman", rho)
        _items(_side(tmp_path, side), "ATEC", _pairs("validation", COSINES, GOLD) + _pairs("test", COSINES, GOLD))
    [row] = _compare(tmp_path, "ATEC")
    assert row.status == "ok" and row.test == "paired permutation over 10 pairs"
    _items(
        _side(tmp_path, "base"), "ATEC", _pairs("validation", COSINES, GOLD[::-1]) + _pairs("test", COSINES, GOLD[::-1])
    )
    with pytest.raises(CmtebError) as err:
        _compare(tmp_path, "ATEC")
    reversed_rho = stats.spearmanr(COSINES, GOLD[::-1]).statistic
    assert str(err.value) == (
        f"baseline ATEC: test cosine_spearman is {100 * reversed_rho:.2f} from the items but {100 * rho:.2f} in the "
        "result file: one of ATEC.json and its items file was changed; rerun the task"
    )


def _unmatched_and_queries(why: str, values: list[float]) -> list[dict]:
    """Item rows: a group that matches no single stored number (`why`), then per-query nDCG@10 `values`."""
    unmatched = [{**row, "metric": "mrr_at_10"} for row in _queries([0.1] * 4)]  # stored: 0.9, or NaN
    if why == "no-such-split":
        unmatched = _queries([0.1] * 4, split="a-split")
    elif why == "no-such-metric":
        unmatched = [{**row, "metric": "recall_at_7"} for row in unmatched]
    elif why == "two-subsets":
        unmatched = [{**row, "subset": f"s{i % 2}"} for i, row in enumerate(unmatched)]
    return [{"subset": "default", "label": None, **row} for row in unmatched + _queries(values)]


@pytest.mark.parametrize("why", ["no-such-split", "two-entries", "two-subsets", "not-a-number", "no-such-metric"])
def test_values_that_cannot_be_matched_one_to_one_are_not_checked_and_later_ones_still_are(why, tmp_path):
    """A group of items that matches no single stored number is passed over; the groups after it are checked
    (the groups go in name order: mrr_at_10 before ndcg_at_10)."""
    _folders(tmp_path)
    for side in ("base", "cand"):
        path = _side(tmp_path, side) / "T2Retrieval.json"
        data = json.loads(path.read_text(encoding="utf-8"))
        dev = {"ndcg_at_10": 0.675, "mrr_at_10": float("nan") if why == "not-a-number" else 0.9, "main_score": 0.675}
        data["scores"]["dev"] = [dev] if why != "two-entries" else [dev, {**dev, "hf_subset": "other"}]
        atomic_write_json(path, data)
        write_items(path, _unmatched_and_queries(why, [0.5, 0.7, 0.9, 0.6]))
    [row] = _compare(tmp_path, "T2Retrieval")
    paired = 8 if why == "no-such-split" else 4  # the other split's queries are paired too
    assert row.test == f"paired permutation over {paired} queries"
    write_items(_side(tmp_path, "cand") / "T2Retrieval.json", _unmatched_and_queries(why, [0.1, 0.7, 0.9, 0.6]))
    if why == "two-entries":  # the file's dev split is not one entry: nothing of dev is matched
        assert _compare(tmp_path, "T2Retrieval")[0].test == "paired permutation over 4 queries"
        return
    with pytest.raises(CmtebError, match=r"^candidate T2Retrieval: dev ndcg_at_10 is 57\.50 from the items but 67\.50"):
        _compare(tmp_path, "T2Retrieval")


def test_a_folder_is_found_by_model_and_ambiguity_is_refused(tmp_path):
    write_model(tmp_path, "org/a", "r1", SCORES)
    write_model(tmp_path, "org/b", "r1", SCORES)
    assert resolve_folder(tmp_path, "org/b").model == "org/b"
    with pytest.raises(CmtebError) as err:
        resolve_folder(tmp_path, None)
    assert str(err.value) == (
        f"{tmp_path} holds several result folders ({tmp_path / 'org__a' / 'r1'} (unrecorded), "
        f"{tmp_path / 'org__b' / 'r1'} (unrecorded)): pass one folder or --model"
    )
    with pytest.raises(CmtebError) as err:
        resolve_folder(tmp_path, "org/c")
    assert str(err.value) == f"no results of org/c under {tmp_path}: pass a result folder written by `cmteb run`"
    with pytest.raises(CmtebError) as err:
        resolve_folder(_empty(tmp_path), None)
    assert str(err.value) == f"no results under {tmp_path / 'empty'}: pass a result folder written by `cmteb run`"


def _empty(tmp_path: Path) -> Path:
    (tmp_path / "empty").mkdir()
    return tmp_path / "empty"


def test_a_subsample_on_one_side_only_is_refused_with_both_counts(tmp_path):
    base_folder = write_protocol_model(tmp_path / "base", "org/m", "cmteb-31")
    cand_folder = write_protocol_model(tmp_path / "cand", "org/m", "cmteb-31")
    edit_run_record(cand_folder, lambda record: record["tasks"]["ATEC"].update(subsample_items=20))
    base, cand = resolve_folder(base_folder, None), resolve_folder(cand_folder, None)
    with pytest.raises(CmtebError) as err:
        compare_results(base, cand, tasks=["ATEC"])
    assert str(err.value) == (
        "ATEC: the baseline ran on every item and the candidate kept 20 items of each split: compare results of "
        "the same --subsample (rerun the baseline with this cmteb when its version changed how many items a "
        "subsample keeps)"
    )
    with pytest.raises(CmtebError, match=r"^ATEC: the baseline kept 20 items of each split and the candidate ran on"):
        compare_results(cand, base, tasks=["ATEC"])
    assert np.isfinite(compare_results(base, base, tasks=["ATEC"])[0].delta)


def _shifted_folders(tmp_path: Path, atec: float) -> tuple:
    base = resolve_folder(write_model(tmp_path / "b", "org/m", "r1", SCORES), None)
    cand = resolve_folder(
        write_model(tmp_path / "c", "org/m", "r2", {**SCORES, "ATEC": {"cosine_spearman": atec}}), None
    )
    return base, cand


def test_by_default_a_drop_must_exceed_half_a_point(tmp_path):
    """compare_results' own defaults (tolerance 0.5 points, alpha 0.05), the float noise judged from the folders."""
    for atec, status in ((0.5949, "regressed"), (0.5951, "ok"), (0.6051, "improved")):
        base, cand = _shifted_folders(tmp_path / str(atec), atec)
        rows = {r.task: r for r in compare_results(base, cand)}
        assert rows["ATEC"].status == status and rows["ATEC"].noise is None and rows["ATEC"].detectable == 0.5
    base, cand = _shifted_folders(tmp_path / "exact", 0.595)
    drop = 100 * (0.595 - 0.60)
    [row] = compare_results(base, cand, tasks=["ATEC"], tolerance=-drop)
    assert row.delta == drop and row.status == "ok", "a drop of exactly the tolerance is not more than it"
    base, cand = _shifted_folders(tmp_path / "rise", 0.605)
    rise = 100 * (0.605 - 0.60)
    [row] = compare_results(base, cand, tasks=["ATEC"], tolerance=rise)
    assert row.delta == rise and row.status == "ok", "a rise of exactly the tolerance is not more than it"


def test_the_paired_tests_numbers_reach_the_row(tmp_path):
    """The row carries the paired test's p-value and its confidence interval in points, run on the matched
    pairs with their gold labels, at 1 - alpha, with compare's resample count."""
    _folders(tmp_path)
    rng = np.random.default_rng(3)
    gold = list(rng.uniform(0, 5, 30))
    base_cosines = list(np.array(gold) / 5 + rng.normal(0, 0.1, 30))
    cand_cosines = list(np.array(gold) / 5 + rng.normal(0, 0.3, 30))
    for side, cosines in (("base", base_cosines), ("cand", cand_cosines)):
        rho = stats.spearmanr(cosines, gold).statistic
        _set_score(_side(tmp_path, side), "ATEC", "test", "cosine_spearman", rho)
        _set_score(_side(tmp_path, side), "ATEC", "validation", "cosine_spearman", rho)
        _items(_side(tmp_path, side), "ATEC", _pairs("test", cosines, gold) + _pairs("validation", cosines, gold))
    base, cand = resolve_folder(tmp_path / "base", None), resolve_folder(tmp_path / "cand", None)
    [row] = compare_results(base, cand, tasks=["ATEC"], alpha=0.1)
    expected = paired_test(
        np.array(base_cosines * 2), np.array(cand_cosines * 2), metric="spearman", labels=np.array(gold * 2),
        groups=np.array([0] * 30 + [1] * 30), confidence=0.9, n_resamples=PAIR_RESAMPLES,
    )  # fmt: skip
    assert row.test == "paired permutation over 60 pairs"
    assert (row.p_value, row.ci_low, row.ci_high) == (
        pytest.approx(expected.p_value),
        pytest.approx(100 * expected.ci_low),
        pytest.approx(100 * expected.ci_high),
    )
    assert row.ci_low < row.ci_high


def test_runs_of_two_protocols_are_never_compared(tmp_path):
    base = resolve_folder(write_protocol_model(tmp_path / "a", "org/m", "cmteb-31"), None)
    cand = resolve_folder(write_protocol_model(tmp_path / "b", "org/m", "mteb-cmn-v1"), None)
    with pytest.raises(CmtebError) as err:
        compare_results(base, cand)
    assert str(err.value) == (
        "baseline was produced under protocol cmteb-31 and candidate under mteb-cmn-v1: compare results of the same "
        "protocol (`cmteb run --protocol`)"
    )


def test_a_run_recorded_before_subsamples_were_scaled_names_the_n_it_asked_for(tmp_path):
    folders = [write_protocol_model(tmp_path / side, "org/m", "cmteb-31") for side in ("a", "b")]
    for folder, n in zip(folders, (20, 30), strict=True):
        # no subsample_items: an older run record
        edit_run_record(folder, lambda record, n=n: record["tasks"]["ATEC"].update(subsample=n))
    base, cand = (resolve_folder(folder, None) for folder in folders)
    with pytest.raises(CmtebError, match=r"^ATEC: the baseline kept 20 items of each split and the candidate kept 30 "):
        compare_results(base, cand, tasks=["ATEC"])


def _query_items(tmp_path: Path, base_values: list[float], cand_values: list[float] | None) -> None:
    _folders(tmp_path)
    for side, values in (("base", base_values), ("cand", cand_values)):
        if values is None:
            continue
        _set_score(_side(tmp_path, side), "T2Retrieval", "dev", "ndcg_at_10", float(np.mean(values)))
        _items(_side(tmp_path, side), "T2Retrieval", _queries(values))


@pytest.mark.parametrize(
    ("cand", "test"),
    [
        (None, "tolerance only"),  # per-query values on one side only
        ([0.4], "tolerance only"),  # one query matched: nothing to resample
        ([0.4, 0.6], "paired permutation over 2 queries"),
    ],
)
def test_the_paired_test_needs_two_matched_items_on_both_sides(cand, test, tmp_path):
    _query_items(tmp_path, [0.5, 0.7][: len(cand or [0, 0])], cand)
    assert _compare(tmp_path, "T2Retrieval")[0].test == test


def test_per_query_means_are_resampled_2000_times(tmp_path):
    rng = np.random.default_rng(4)
    base_values, cand_values = list(rng.uniform(0, 1, 25)), list(rng.uniform(0, 1, 25))
    _query_items(tmp_path, base_values, cand_values)
    [row] = _compare(tmp_path, "T2Retrieval")
    expected = paired_test(np.array(base_values), np.array(cand_values), groups=np.zeros(25, int), n_resamples=2000)
    assert (row.p_value, row.ci_low, row.ci_high) == (
        pytest.approx(expected.p_value),
        pytest.approx(100 * expected.ci_low),
        pytest.approx(100 * expected.ci_high),
    )


def test_classification_is_paired_over_its_experiments(tmp_path):
    scores = {"TNews": {"accuracy": 0.5}}
    folders = [write_model(tmp_path / side, "org/m", rev, scores) for side, rev in (("base", "r1"), ("cand", "r2"))]
    for folder, accuracies in zip(folders, ([0.5, 0.6, 0.4], [0.45, 0.5, 0.35]), strict=True):
        _set_score(folder, "TNews", "validation", "accuracy", float(np.mean(accuracies)))
        rows = [
            {"split": "validation", "unit": "experiment", "id": str(i), "metric": "accuracy", "value": a}
            for i, a in enumerate(accuracies)
        ]
        _items(folder, "TNews", rows)
    base, cand = (resolve_folder(folder, None) for folder in folders)
    [row] = compare_results(base, cand, tasks=["TNews"])
    assert row.test == "paired permutation over 3 experiments" and row.delta == pytest.approx(-6.6666667)


def test_a_result_file_without_a_usable_score_is_named(tmp_path):
    base, cand = _folders(tmp_path)
    _set_score(_side(tmp_path, "cand"), "ATEC", "test", "accuracy", 0.5)
    _set_score(_side(tmp_path, "cand"), "ATEC", "validation", "accuracy", 0.5)
    cand = resolve_folder(tmp_path / "cand", None)
    with pytest.raises(CmtebError) as err:
        compare_results(base, cand, tasks=["ATEC"])
    assert str(err.value) == (
        f"candidate result file {_side(tmp_path, 'cand') / 'ATEC.json'} holds no usable cosine_spearman score (no "
        "scores, or not a number): rerun the task or fix the file"
    )


def test_rows_come_regressed_missing_improved_ok_and_a_missing_row_keeps_its_noise(tmp_path):
    """Statuses given against the protocol's task order, so the order of the rows is the report's own."""
    four = {"T2Retrieval": ("ndcg_at_10", 0.7), "ATEC": ("cosine_spearman", 0.6), "TNews": ("accuracy", 0.5),
            "AFQMC": ("cosine_spearman", 0.3)}  # fmt: skip
    base_folder = write_model(tmp_path / "base", "org/m", "r1", {t: {m: v} for t, (m, v) in four.items()})
    order = [t.name for t in resolve_folder(base_folder, None).resolved.all_tasks if t.name in four]
    statuses = dict(zip(order, ["ok", "improved", "missing", "regressed"], strict=True))
    moved = {"ok": 0.0, "improved": 0.05, "regressed": -0.05}
    cand_scores = {t: {m: v + moved[statuses[t]]} for t, (m, v) in four.items() if statuses[t] != "missing"}
    cand_folder = write_model(tmp_path / "cand", "org/m", "r2", cand_scores)
    missing = order[2]
    write_run_record(base_folder, {t: {"noise": {"points": 0.3}} if t == missing else {} for t in four})
    rows = compare_results(resolve_folder(base_folder, None), resolve_folder(cand_folder, None))
    assert [(r.task, r.status) for r in rows] == [(t, statuses[t]) for t in reversed(order)]
    spec = resolve_folder(base_folder, None).resolved.get(missing)
    assert rows[1] == TaskComparison(
        missing, spec.type, spec.metric, 100 * four[missing][1], None, None, "missing", test="—", noise=0.3,
        detectable=0.6,
    )  # fmt: skip
    swapped = {r.task: r for r in compare_results(resolve_folder(cand_folder, None), resolve_folder(base_folder, None))}
    assert (swapped[missing].baseline, swapped[missing].candidate) == (None, 100 * four[missing][1])


def test_unverified_folders_are_compared_only_when_allowed(tmp_path):
    folder = write_protocol_model(tmp_path, "org/m", "cmteb-31")
    (folder / RUN_RECORD).unlink()
    with pytest.raises(CmtebError, match="without an intact run record"):
        resolve_folder(tmp_path, None)
    assert resolve_folder(tmp_path, None, allow_unverified=True).folder == folder
