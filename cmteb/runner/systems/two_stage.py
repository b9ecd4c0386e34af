"""Two stages on the Retrieval tasks: the embedder retrieves, the reranker re-ranks its top k; stored as the
system `M+R`, never in M's own folder."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from cmteb.models.adapter import BGEModel, BGERerankerModel
from cmteb.mteb_hooks import task_result_json
from cmteb.results.reader import parse_result_data
from cmteb.runner.checks import embedder_probe, reranker_probe
from cmteb.runner.config import RunConfig
from cmteb.runner.evaluate import evaluate, searchable
from cmteb.runner.probe import ProbeChoice
from cmteb.runner.progress import RunProgress
from cmteb.runner.systems.base import System, core_header, planned_instructions, run_header
from cmteb.runner.systems.cores import embedder_encoding_ahead, reranker_model
from cmteb.runner.systems.loader import TaskLoader, while_loading_data
from cmteb.tasks.registry import TaskSpec


def build(config: RunConfig, load: TaskLoader, pending: list[TaskSpec], progress: RunProgress) -> System:
    """Load both models (beside the data where all is local) and wire them to mteb's evaluation."""
    embedder, cross = while_loading_data(
        config,
        load,
        pending,
        progress,
        lambda: (embedder_encoding_ahead(config, load, pending, progress), reranker_model(config, progress)),
    )
    embedder.probe, cross.probe = ProbeChoice(), ProbeChoice()
    cores = [embedder.encoder, cross.reranker]
    return _two_stage(config, embedder, cross, load, run_header(config, cores), cores)


def _two_stage(
    config: RunConfig, embedder: BGEModel, cross: BGERerankerModel, load: TaskLoader, header: dict, cores: list[Any]
) -> System:
    """The embedder retrieves, the reranker re-ranks its top k; both stages' scores are kept."""

    encoder, rerank_core, batch = embedder.encoder, cross.reranker, config.load.batch_size

    def two_stage(spec: TaskSpec) -> tuple[Any, dict[str, Any]]:
        embedder.probe.take()  # only this task's texts and pairs
        cross.probe.take()
        with tempfile.TemporaryDirectory(prefix="cmteb-first-stage-") as predictions:
            first_task = load(spec)
            first = evaluate(searchable(embedder, first_task), first_task, batch, prediction_folder=predictions)
            second_task = load(spec)
            second_task.convert_to_reranking(predictions, top_k=config.reranker.top_k)  # type: ignore[union-attr]
            second = evaluate(cross, second_task, batch)
        first_scores = parse_result_data(task_result_json(first), Path(f"{spec.name}.json")).splits
        return second, {
            "first_stage_score": config.protocol.task_score(spec, first_scores),
            "instructions_used": planned_instructions(embedder, spec),
            "probe": embedder_probe(embedder) + reranker_probe(cross),
        }

    return System(
        header={
            **header,
            "first_stage": {**core_header(encoder), "pooling": encoder.pooling},
            "second_stage": core_header(rerank_core),
        },
        evaluate=two_stage,
        counted=lambda: encoder.stats.texts + rerank_core.stats.texts,
        stats=lambda: {
            "encoder": encoder.stats.as_dict(),
            "reranker": rerank_core.stats.as_dict(),
            "cache_hits": embedder.cache.hits,
        },
        tasks_evaluated=load.evaluated,
        unknown_qrels=load.unknown_qrels,
        cores=cores,
    )
