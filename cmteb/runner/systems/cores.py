"""The model cores of a run, loaded here or as a pool of worker replicas, and presented to mteb."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

from cmteb.errors import warn
from cmteb.models.adapter import BGEModel, BGERerankerModel
from cmteb.models.cache import EMBEDDINGS, EmbeddingCache, text_key
from cmteb.models.encoder import BGEEncoder
from cmteb.models.reranker import load_reranker
from cmteb.runner.config import RunConfig
from cmteb.runner.prefetch import Prefetcher, planned_texts, possible_texts
from cmteb.runner.progress import RunProgress
from cmteb.runner.systems.base import visible_workers
from cmteb.runner.systems.loader import TaskLoader
from cmteb.tasks.registry import TaskSpec
from cmteb.workers.pool import start_pool
from cmteb.workers.replica import ReplicaSpec


def loaded(config: RunConfig, load: Callable[..., Any], spec: Callable[[Any], ReplicaSpec]) -> Any:
    """A core loaded here and, when the run uses workers, given a pool of replicas (this process then keeps
    its copy on the CPU, for tokenising and for what the run record says of the model)."""
    workers = visible_workers(config)
    if not workers.pooled:
        return load(**vars(config.load))
    core = load(**{**vars(config.load), "device": "cpu"})
    core.pool = start_pool(workers, spec(core))
    return core


def embedding_model(config: RunConfig, progress: RunProgress) -> BGEModel:
    choice = config.embedder
    recipe = choice.recipe  # type: ignore[union-attr]
    encoder = loaded(
        config,
        lambda **load: BGEEncoder.load(choice.source, recipe=recipe, **load),  # type: ignore[union-attr]
        lambda core: ReplicaSpec("encoder", core.source, config.load, recipe),
    )
    namespace = {
        "model": encoder.source.name,
        "revision": encoder.source.revision,
        # What the network's outputs go through; a text's instruction is part of the text the cache keys on.
        **{k: v for k, v in recipe.as_record().items() if k not in ("recognised_by", "instructions", "reference")},
        "max_length": encoder.max_length,
        "precision": encoder.precision,
        "format": 2,
        # One text per forward pass gives other float noise than shared batches: never mix the two.
        **({"batch_invariant": True} if config.batch_invariant else {}),
        **({"trust_remote_code": True} if config.load.trust_remote_code else {}),  # the model's own code ran
    }
    on_disk = config.use_cache and encoder.source.revision is not None
    cache = EmbeddingCache(namespace, config.cache_dir / EMBEDDINGS if on_disk else None)
    if cache.corrupt_shards:
        warn(
            f"embedding cache {cache.folder}: {len(cache.corrupt_shards)} damaged shards ignored; "
            "their texts are encoded again"
        )
    return BGEModel(
        encoder,
        instructions=choice.instructions,  # type: ignore[union-attr]
        cache=cache,
        on_texts=progress.add_texts,
        on_batch=progress.texts_done,
    )


def reranker_model(config: RunConfig, progress: RunProgress) -> BGERerankerModel:
    choice = config.reranker
    core = loaded(
        config,
        lambda **load: load_reranker(
            choice.source,  # type: ignore[union-attr]
            recipe=choice.recipe,  # type: ignore[union-attr]
            normalize=choice.normalize,  # type: ignore[union-attr]
            cutoff=choice.cutoff_layer,  # type: ignore[union-attr]
            **load,
        ),
        lambda core: ReplicaSpec(
            "reranker",
            core.source,
            config.load,
            choice.recipe,
            choice.normalize,
            choice.cutoff_layer,  # type: ignore[union-attr]
        ),
    )
    return BGERerankerModel(core, on_texts=progress.add_texts, on_batch=progress.texts_done)


def prefetcher(embedder: BGEModel, load: TaskLoader, pending: list[TaskSpec]) -> Prefetcher:
    """The encode phase ahead of evaluation for the pending tasks (`runner/prefetch.py`), started at once: each
    task is planned on the prefetcher's planning thread as soon as its data is loaded."""

    def plans() -> Iterator[tuple[str, list[str] | None, list[str]]]:
        for spec in pending:
            task = load.loaded(spec.name)
            if task is None:  # loading stopped (an error, raised where the data loads)
                return
            planned = planned_texts(task, partial(embedder.instruction_for, task.metadata), spec.type)
            yield spec.name, planned, possible_texts(task) if planned is None else []

    def is_cached(text: str) -> bool:
        return embedder.cache.get(text_key(text)) is not None

    return Prefetcher(plans(), is_cached, embedder.encode_ahead, embedder.tokenize_ahead).start()


def embedder_encoding_ahead(
    config: RunConfig, load: TaskLoader, pending: list[TaskSpec], progress: RunProgress
) -> BGEModel:
    """The embedder; in a pipelined run of an embedding model alone, encoding ahead from the moment it is
    loaded, while the data of later tasks still loads."""
    embedder = embedding_model(config, progress)
    if config.pipeline and config.reranker is None:
        embedder.prefetcher = prefetcher(embedder, load, pending)
    return embedder
