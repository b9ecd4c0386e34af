"""Retrieval and reranking runs scored by pytrec_eval a slice of queries at a time
(`cmteb.mteb_hooks.PytrecInSlices`): the same scores, in the same order, as mteb's one call."""

from __future__ import annotations

import random

import pytest
import pytrec_eval
from mteb._evaluators import retrieval_metrics

from cmteb import mteb_hooks
from cmteb.mteb_hooks import SlicedRelevanceEvaluator, _sliced_pytrec_eval
from cmteb.runner import run

K_VALUES = [1, 3, 5, 10, 20, 100, 1000]


def _qrels_and_run(seed: int) -> tuple[dict, dict]:
    """Queries with 1 to 40 candidates (ties among them), some without qrels, ids in no sorted order."""
    rng = random.Random(seed)
    queries = [f"q{rng.randrange(10**6)}" for _ in range(60)]
    qrels = {q: {f"d{rng.randrange(300)}": rng.choice([0, 1, 2]) for _ in range(3)} for q in queries[5:]}
    run = {}
    for q in queries:
        scores = [round(rng.random(), 2) for _ in range(rng.randrange(1, 41))]
        run[q] = {f"d{rng.randrange(300)}": s for s in scores}
    return qrels, run


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sliced_scores_are_one_calls_in_its_order(seed, monkeypatch):
    monkeypatch.setattr(mteb_hooks, "PYTREC_SLICE_PAIRS", 37)
    qrels, run = _qrels_and_run(seed)
    measures = {"map_cut.1,10,1000", "ndcg_cut.1,10,1000", "recall.1,10,1000", "P.1,10", "success.1,10"}
    whole = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
    sliced = SlicedRelevanceEvaluator(qrels, measures).evaluate(run)
    assert list(sliced) == list(whole)
    assert sliced == whole


def test_mtebs_scoring_gives_the_same_result_with_slices(monkeypatch):
    monkeypatch.setattr(mteb_hooks, "PYTREC_SLICE_PAIRS", 50)
    qrels, run = _qrels_and_run(3)
    run = {q: docs for q, docs in run.items() if q in qrels}  # mteb scores only queries with qrels
    mtebs = retrieval_metrics.calculate_retrieval_scores(run, qrels, K_VALUES)
    with _sliced_pytrec_eval():
        ours = retrieval_metrics.calculate_retrieval_scores(run, qrels, K_VALUES)
    assert ours == mtebs
    assert retrieval_metrics.pytrec_eval is pytrec_eval, "pytrec_eval's own evaluator is back afterwards"


def test_each_call_scores_one_slice(monkeypatch):
    """pytrec_eval holds the GIL through a call, so no call may take more than its slice (save the one query
    that crosses the limit): between calls the other threads run."""
    monkeypatch.setattr(mteb_hooks, "PYTREC_SLICE_PAIRS", 40)
    _, run = _qrels_and_run(4)
    parts = list(SlicedRelevanceEvaluator.slices(run))
    assert [q for part in parts for q in part] == list(run), "every query once, in the run's order"
    assert len(parts) > 5
    assert all(sum(len(docs) for docs in part.values()) - len(list(part.values())[-1]) < 40 for part in parts)


def test_a_runs_retrieval_task_is_scored_in_slices(m3e_dir, samples_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(mteb_hooks, "PYTREC_SLICE_PAIRS", 1)  # a slice per query
    sliced: list[int] = []
    slices = SlicedRelevanceEvaluator.slices

    def counted(scored):
        parts = list(slices(scored))
        sliced.append(len(parts))
        return iter(parts)

    monkeypatch.setattr(SlicedRelevanceEvaluator, "slices", staticmethod(counted))
    summary = run(str(m3e_dir), tasks=["T2Retrieval"], data_dir=samples_dir, output_dir=tmp_path, show_progress=False)
    assert summary.outcomes[0].status == "ran"
    assert len(sliced) == 1 and sliced[0] > 1, "mteb's one scoring call went through the slices"
    assert retrieval_metrics.pytrec_eval is pytrec_eval, "pytrec_eval's own evaluator is back after the task"


def test_the_benchmarks_lever_scores_a_run_in_one_call(monkeypatch):
    from levers import LEVERS

    monkeypatch.setattr(mteb_hooks, "PYTREC_SLICE_PAIRS", 2)  # put back after the test
    _, scored = _qrels_and_run(5)
    assert len(list(SlicedRelevanceEvaluator.slices(scored))) > 1
    LEVERS["pytrec-slices"]()
    assert list(SlicedRelevanceEvaluator.slices(scored)) == [scored]
