"""Paired significance of a score difference, from per-query/per-item values (scipy.stats).

Both systems are scored on the same queries, pairs or experiments, so the tests are paired:
- p-value: a paired permutation test (`scipy.stats.permutation_test`, permutation_type="samples",
  which swaps the two systems' values within each unit);
- interval: a paired percentile bootstrap of the difference (`scipy.stats.bootstrap`).
The statistic is the task's metric on each system (mean of per-query values; Spearman or AP of
pair similarities against the gold labels), averaged over splits, candidate minus baseline.
Seeds are fixed, so a report is reproducible.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats
from sklearn.metrics import average_precision_score

SEED = 20231101
N_RESAMPLES = 2000


@dataclass(frozen=True)
class PairedTest:
    """Outcome of a paired test: the observed difference, its p-value and confidence interval."""

    delta: float
    p_value: float
    ci_low: float
    ci_high: float
    n: int


def _spearman(values: np.ndarray, labels: np.ndarray) -> float:
    return float(stats.spearmanr(values, labels)[0])


def _ap(values: np.ndarray, labels: np.ndarray) -> float:
    return float(average_precision_score(labels.astype(int), values))


def _best_accuracy(values: np.ndarray, labels: np.ndarray) -> float:
    """mteb's pair-classification accuracy (`_find_best_acc_and_threshold`): the best accuracy of a threshold
    between two adjacent distinct similarities, "same" above it. Like mteb, a threshold never splits tied
    similarities (resamples repeat pairs, so ties are common) and never passes every pair or none. Written again,
    vectorised, because it runs on every resample and mteb's is a private method looping in Python."""
    order = np.argsort(-values, kind="stable")
    ranked, positives = values[order], labels[order].astype(int)
    # Predicting "same" for the top k (1 <= k < n): correct are the positives among them and negatives after them.
    correct = np.cumsum(positives)[:-1] + (len(positives) - positives.sum()) - np.cumsum(1 - positives)[:-1]
    cuts = ranked[:-1] != ranked[1:]
    return float(correct[cuts].max() / len(positives)) if cuts.any() else 0.0


def _mean(values: np.ndarray, labels: np.ndarray) -> float:
    return float(values.mean())


METRIC_FUNCTIONS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "mean": _mean,
    "spearman": _spearman,
    "ap": _ap,
    "best_accuracy": _best_accuracy,
}


def paired_test(
    baseline: np.ndarray,
    candidate: np.ndarray,
    *,
    metric: str = "mean",
    labels: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    confidence: float = 0.95,
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
) -> PairedTest:
    """Test `candidate` against `baseline`, aligned value for value.

    `metric` says how a system's values become a score ("mean", or "spearman"/"ap" against
    `labels`); `groups` (e.g. splits) are scored separately and averaged.
    """
    fn = METRIC_FUNCTIONS[metric]
    baseline = np.asarray(baseline, dtype=float)
    candidate = np.asarray(candidate, dtype=float)
    labels = np.zeros_like(baseline) if labels is None else np.asarray(labels, dtype=float)
    groups = np.zeros(len(baseline), dtype=int) if groups is None else np.asarray(groups)
    group_ids = np.unique(groups)

    def score(values: np.ndarray, gold: np.ndarray, grp: np.ndarray) -> float:
        return float(np.mean([fn(values[grp == g], gold[grp == g]) for g in group_ids if np.any(grp == g)]))

    def difference(base: np.ndarray, cand: np.ndarray) -> float:
        return score(cand, labels, groups) - score(base, labels, groups)

    observed = difference(baseline, candidate)
    if np.allclose(baseline, candidate):
        return PairedTest(observed, 1.0, 0.0, 0.0, len(baseline))
    rng = np.random.default_rng(seed)
    perm = stats.permutation_test(
        (baseline, candidate),
        difference,
        permutation_type="samples",
        n_resamples=n_resamples,
        vectorized=False,
        random_state=rng,
    )
    boot = stats.bootstrap(
        (baseline, candidate, labels, groups),
        lambda b, c, lab, grp: score(c, lab, grp) - score(b, lab, grp),
        paired=True,
        vectorized=False,
        n_resamples=n_resamples,
        method="percentile",
        confidence_level=confidence,
        random_state=np.random.default_rng(seed + 1),
    )
    return PairedTest(
        observed,
        float(perm.pvalue),
        float(boot.confidence_interval.low),
        float(boot.confidence_interval.high),
        len(baseline),
    )
