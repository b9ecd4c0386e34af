"""What a run keeps of each evaluated task besides its scores, for `cmteb compare` to judge float noise by:
the task's probe (`runner/probe.py`) and, when asked, its measured noise (`runner/noise.py`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cmteb.models.adapter import BGEModel, BGERerankerModel
from cmteb.mteb_hooks import task_result_json
from cmteb.results.reader import parse_result_data
from cmteb.runner.config import RunConfig
from cmteb.runner.evaluate import evaluate, searchable
from cmteb.runner.noise import measure_noise
from cmteb.runner.probe import embedding_rows, score_rows
from cmteb.tasks.registry import TaskSpec


def result_score(config: RunConfig, spec: TaskSpec, result: Any) -> float:
    """A TaskResult's score by the protocol's metric and split rule, as the result file will give it."""
    splits = parse_result_data(task_result_json(result), Path(f"{spec.name}.json")).splits
    return config.protocol.task_score(spec, splits)


def embedder_probe(embedder: BGEModel) -> list[dict[str, Any]]:
    """The probe rows of the texts the embedder was shown since the last call (under its lock: encoding ahead
    may be running for the next task)."""
    chosen = embedder.probe.take()
    with embedder.lock:
        return embedding_rows(embedder.encoder, chosen)


def reranker_probe(reranker: BGERerankerModel) -> list[dict[str, Any]]:
    """The probe rows of the pairs the reranker scored since the last call."""
    return score_rows(reranker.reranker, reranker.probe.take())


def task_noise(
    config: RunConfig, fresh_task: Any, spec: TaskSpec, model: Any, result: Any, size: float
) -> dict[str, Any] | None:
    """The task's measured noise (`runner/noise.py`), or None when the run measures none. `fresh_task(spec)`
    gives a new task object with its data for each perturbed evaluation; an embedder searches as the run's
    own evaluation does, a reranker scores the task's candidates."""
    if not config.noise_draws:
        return None

    def score_with(perturbed: Any) -> float:
        task = fresh_task(spec)
        scored = perturbed if isinstance(model, BGERerankerModel) else searchable(perturbed, task)
        return result_score(config, spec, evaluate(scored, task, config.load.batch_size))

    return measure_noise(score_with, model, result_score(config, spec, result), size, config.noise_draws)
