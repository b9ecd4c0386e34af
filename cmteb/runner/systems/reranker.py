"""A reranker alone, on the Reranking tasks: it scores each query's given candidates."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cmteb.models.adapter import BGERerankerModel
from cmteb.runner.checks import reranker_probe, task_noise
from cmteb.runner.config import RunConfig
from cmteb.runner.evaluate import evaluate
from cmteb.runner.probe import ProbeChoice
from cmteb.runner.progress import RunProgress
from cmteb.runner.systems.base import System, core_header, run_header
from cmteb.runner.systems.cores import reranker_model
from cmteb.runner.systems.loader import TaskLoader, while_loading_data
from cmteb.tasks.registry import TaskSpec


def build(config: RunConfig, load: TaskLoader, pending: list[TaskSpec], progress: RunProgress) -> System:
    """Load the reranker (beside the data where both are local) and wire it to mteb's evaluation."""
    cross = while_loading_data(config, load, pending, progress, lambda: reranker_model(config, progress))
    cross.probe = ProbeChoice()
    core = cross.reranker
    header = run_header(config, [core])
    return System(
        header={**core_header(core), **header},
        evaluate=_evaluation(config, cross, load, header["probe"]["threshold"]),
        counted=lambda: core.stats.texts,
        stats=lambda: {"reranker": core.stats.as_dict()},
        meta=cross.mteb_model_meta,
        tasks_evaluated=load.evaluated,
        unknown_qrels=load.unknown_qrels,
        cores=[core],
    )


def _evaluation(
    config: RunConfig, cross: BGERerankerModel, load: TaskLoader, threshold: float
) -> Callable[[TaskSpec], tuple[Any, dict[str, Any]]]:
    """A reranker alone scoring each query's given candidates, with its probe and measured noise."""

    def evaluate_reranker(spec: TaskSpec) -> tuple[Any, dict[str, Any]]:
        cross.probe.take()  # only this task's pairs
        result = evaluate(cross, load(spec), config.load.batch_size)
        noise = task_noise(config, load.fresh, spec, cross, result, threshold)
        return result, {"probe": reranker_probe(cross)} | ({"noise": noise} if noise else {})

    return evaluate_reranker
