"""The `bm25` baseline: BM25 through mteb's search on Retrieval and Reranking, TF-IDF vectors fitted on each
task's texts elsewhere; no network, no worker pools."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from cmteb.models.lexical.model import LexicalEncoder, lexical_meta
from cmteb.models.lexical.settings import lexical_search
from cmteb.runner.config import RunConfig
from cmteb.runner.evaluate import evaluate
from cmteb.runner.progress import RunProgress
from cmteb.runner.systems.base import System
from cmteb.runner.systems.loader import TaskLoader
from cmteb.tasks.registry import TaskSpec
from cmteb.tasks.types import TYPES
from cmteb.tasks.validate import task_texts


def build(config: RunConfig, load: TaskLoader, pending: list[TaskSpec], progress: RunProgress) -> System:
    """Load the pending tasks' data, then the baseline (nothing to load: its settings)."""
    load.preload(pending, progress)
    settings, source = config.embedder.lexical, config.embedder.source  # type: ignore[union-attr]
    encoder, meta = LexicalEncoder(settings), lexical_meta(settings)  # type: ignore[arg-type]
    meta = meta.model_copy(update={"name": source.name, "revision": source.revision})

    def evaluate_lexical(spec: TaskSpec) -> tuple[Any, dict[str, Any]]:
        task = load(spec)
        if TYPES[spec.type].searches:
            model = lexical_search(settings)  # type: ignore[arg-type]
            model.mteb_model_meta = meta
        else:
            model = encoder.fit(task_texts(task, spec))
        return evaluate(model, task, config.load.batch_size), {}

    header = {**config.settings(), "device": "cpu", **config.identity(), "kind": config.kind.value}
    return System(
        header={"model": source.name, "revision": source.revision, **header, "lexical": asdict(settings)},  # type: ignore[arg-type]
        evaluate=evaluate_lexical,
        counted=lambda: encoder.texts,
        stats=dict,
        meta=meta,
        embedding_dim=settings.width,  # type: ignore[union-attr]
        tasks_evaluated=load.evaluated,
        unknown_qrels=load.unknown_qrels,
    )
