"""An embedding model alone, on any task; its pending tasks' texts encoded ahead when the run is pipelined."""

from __future__ import annotations

from typing import Any

from cmteb.models.adapter import BGEModel
from cmteb.runner.checks import embedder_probe, task_noise
from cmteb.runner.config import RunConfig
from cmteb.runner.evaluate import evaluate, searchable
from cmteb.runner.probe import ProbeChoice
from cmteb.runner.progress import RunProgress
from cmteb.runner.systems.base import System, core_header, planned_instructions, run_header
from cmteb.runner.systems.cores import embedder_encoding_ahead
from cmteb.runner.systems.loader import TaskLoader, while_loading_data
from cmteb.tasks.registry import TaskSpec


def build(config: RunConfig, load: TaskLoader, pending: list[TaskSpec], progress: RunProgress) -> System:
    """Load the embedding model (beside the data where both are local) and wire it to mteb's evaluation."""
    embedder = while_loading_data(
        config, load, pending, progress, lambda: embedder_encoding_ahead(config, load, pending, progress)
    )
    embedder.probe = ProbeChoice()
    return _system(config, embedder, load, progress, run_header(config, [embedder.encoder]))


def _system(
    config: RunConfig,
    embedder: BGEModel,
    load: TaskLoader,
    progress: RunProgress,
    header: dict[str, Any],
) -> System:
    """An embedding model alone, its pending tasks' texts encoded ahead when the run is pipelined."""
    encoder, batch = embedder.encoder, config.load.batch_size

    def evaluate_embedder(spec: TaskSpec) -> tuple[Any, dict[str, Any]]:
        if embedder.prefetcher is not None:
            # Its set was encoded ahead: counted as this task's work, as if encoded now. Taken before the task
            # leaves the loader: every task has been planned by then.
            ahead = embedder.prefetcher.take(spec.name)
            encoder.stats.add(ahead.stats)
            if encoder.pool is not None:
                encoder.pool.log.extend(ahead.log)
            progress.add_texts(ahead.stats.texts)
            progress.texts_done(ahead.stats.texts)
        embedder.probe.take()  # only this task's texts
        task = load(spec)
        result = evaluate(searchable(embedder, task), task, batch)
        extra = {"instructions_used": planned_instructions(embedder, spec), "probe": embedder_probe(embedder)}
        noise = task_noise(config, load.fresh, spec, embedder, result, header["probe"]["threshold"])
        return result, extra | ({"noise": noise} if noise else {})

    return System(
        header={**core_header(encoder), **header, "normalize": encoder.normalize},
        evaluate=evaluate_embedder,
        counted=lambda: encoder.stats.texts,
        stats=lambda: {"encoder": encoder.stats.as_dict(), "cache_hits": embedder.cache.hits},
        meta=embedder.mteb_model_meta,
        embedding_dim=encoder.embedding_dim,
        tasks_evaluated=load.evaluated,
        unknown_qrels=load.unknown_qrels,
        cores=[encoder],
        prefetcher=embedder.prefetcher,
    )
