"""The statistics the paired test recomputes on resamples, each against its reference: mteb's own pair-
classification accuracy, scipy's Spearman, scikit-learn's AP; and how the paired test combines splits."""

from __future__ import annotations

import numpy as np
import pytest
from mteb.abstasks.pair_classification import AbsTaskPairClassification
from scipy import stats
from sklearn.metrics import average_precision_score

from cmteb.report.significance import METRIC_FUNCTIONS, SEED, paired_test


def _mteb_accuracy(values: np.ndarray, labels: np.ndarray) -> float:
    """mteb's accuracy at the best threshold (self is unused by the method)."""
    accuracy, _threshold = AbsTaskPairClassification._find_best_acc_and_threshold(
        None, list(values), np.asarray(labels, dtype=np.int64), True
    )
    return float(accuracy)


CASES = {
    "distinct": (np.array([0.9, 0.1, 0.8, 0.3, 0.7, 0.2]), np.array([1, 0, 1, 1, 0, 0])),
    "ties": (np.array([0.5, 0.5, 0.5, 0.2, 0.9, 0.9]), np.array([1, 0, 1, 0, 1, 0])),
    "resample-like": (np.array([0.7, 0.7, 0.4, 0.4, 0.4, 0.9]), np.array([1, 1, 0, 1, 0, 1])),
    "one-class": (np.array([0.3, 0.6, 0.9]), np.array([1, 1, 1])),
    "all-tied": (np.array([0.5, 0.5, 0.5, 0.5]), np.array([1, 0, 1, 1])),
    "best-is-all-negative": (np.array([0.9, 0.8, 0.1]), np.array([0, 0, 1])),
}


@pytest.mark.parametrize("case", CASES)
def test_best_accuracy_is_mtebs_pair_classification_accuracy(case):
    """Resamples repeat pairs, so ties are common: like mteb, a threshold never splits tied similarities."""
    values, labels = CASES[case]
    assert METRIC_FUNCTIONS["best_accuracy"](values, labels.astype(float)) == pytest.approx(
        _mteb_accuracy(values, labels), abs=1e-12
    )


def test_best_accuracy_on_random_resamples_is_mtebs():
    rng = np.random.default_rng(11)
    for _ in range(200):
        n = int(rng.integers(2, 30))
        values = np.round(rng.uniform(0, 1, n), 1)  # one decimal: many ties
        labels = rng.integers(0, 2, n)
        assert METRIC_FUNCTIONS["best_accuracy"](values, labels.astype(float)) == pytest.approx(
            _mteb_accuracy(values, labels), abs=1e-12
        )


def test_spearman_and_ap_are_scipys_and_scikit_learns():
    rng = np.random.default_rng(5)
    values, gold = rng.uniform(0, 1, 50), rng.uniform(0, 5, 50)
    assert METRIC_FUNCTIONS["spearman"](values, gold) == pytest.approx(stats.spearmanr(values, gold).statistic)
    labels = (gold > 2.5).astype(float)
    assert METRIC_FUNCTIONS["ap"](values, labels) == pytest.approx(average_precision_score(labels, values))
    assert METRIC_FUNCTIONS["mean"](values, gold) == pytest.approx(values.mean())


def test_splits_are_scored_apart_then_averaged():
    """Two splits of unequal size: the statistic is the mean of the per-split means, not the pooled mean."""
    base = np.array([0.5, 0.5, 0.5, 0.5, 0.2])
    cand = np.array([0.6, 0.6, 0.6, 0.6, 0.0])
    groups = np.array([0, 0, 0, 0, 1])
    test = paired_test(base, cand, groups=groups, n_resamples=200)
    assert test.delta == pytest.approx(((0.6 - 0.5) + (0.0 - 0.2)) / 2)
    assert test.n == 5
    pooled = paired_test(base, cand, n_resamples=200)
    assert pooled.delta == pytest.approx(cand.mean() - base.mean())


def test_equal_systems_need_no_resampling_and_a_wider_confidence_gives_a_wider_interval():
    values = np.linspace(0, 1, 40)
    same = paired_test(values, values.copy())
    assert (same.delta, same.p_value, same.ci_low, same.ci_high, same.n) == (0.0, 1.0, 0.0, 0.0, 40)
    rng = np.random.default_rng(2)
    cand = values + rng.normal(0.02, 0.05, 40)
    narrow = paired_test(values, cand, confidence=0.5, n_resamples=500)
    wide = paired_test(values, cand, confidence=0.99, n_resamples=500)
    assert wide.ci_low < narrow.ci_low < narrow.delta < narrow.ci_high < wide.ci_high
    assert narrow.p_value == wide.p_value  # the p-value does not depend on the interval's level


def test_the_p_value_and_interval_are_scipys_paired_permutation_and_percentile_bootstrap():
    """As the module says: scipy's permutation test swapping the two systems' values within each unit, and a
    paired percentile bootstrap of the difference, both seeded, with the asked resample count and level."""
    rng = np.random.default_rng(9)
    base = rng.uniform(0, 1, 30)
    cand = base + rng.normal(0.05, 0.1, 30)
    got = paired_test(base, cand, confidence=0.9, n_resamples=300)

    def difference(b, c):
        return float(np.mean(c) - np.mean(b))

    perm = stats.permutation_test(
        (base, cand), difference, permutation_type="samples", n_resamples=300, random_state=np.random.default_rng(SEED)
    )
    boot = stats.bootstrap(
        (base, cand), difference, paired=True, vectorized=False, n_resamples=300, method="percentile",
        confidence_level=0.9, random_state=np.random.default_rng(SEED + 1),
    )  # fmt: skip
    assert got.delta == pytest.approx(difference(base, cand))
    assert got.p_value == pytest.approx(perm.pvalue)
    assert (got.ci_low, got.ci_high) == (
        pytest.approx(boot.confidence_interval.low),
        pytest.approx(boot.confidence_interval.high),
    )
