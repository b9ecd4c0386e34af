"""Load the model cores a run evaluates and present them to the task loop as one `System`.

Three kinds: an embedding model on any task; a reranker alone on the Reranking tasks, scoring each
query's given candidates; two stages on Retrieval tasks (the embedder retrieves, the reranker
re-ranks its top k), stored as the system `M+R`, never in M's own folder.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from cmteb.errors import warn
from cmteb.hub import HubUnreachable, offline_unless_reachable, unreachable
from cmteb.models.adapter import BGEModel, BGERerankerModel
from cmteb.models.cache import EMBEDDINGS, EmbeddingCache, text_key
from cmteb.models.encoder import BGEEncoder
from cmteb.models.reranker import load_reranker
from cmteb.mteb_hooks import task_result_json
from cmteb.results.reader import LEXICAL_KIND, parse_result_data
from cmteb.runner.arithmetic import arithmetic_record
from cmteb.runner.checks import embedder_probe, reranker_probe, task_noise
from cmteb.runner.config import RunConfig
from cmteb.runner.evaluate import evaluate, searchable
from cmteb.runner.plan import Plan
from cmteb.runner.prefetch import Prefetcher, planned_texts, possible_texts
from cmteb.runner.probe import ProbeChoice, probe_header
from cmteb.runner.progress import RunProgress
from cmteb.tasks.build import build_task, load_task_data
from cmteb.tasks.mirror import mirror_dataset_cache
from cmteb.tasks.qrel_gaps import QrelGaps
from cmteb.tasks.registry import TaskSpec
from cmteb.workers.options import WorkerOptions
from cmteb.workers.pool import start_pool
from cmteb.workers.replica import ReplicaSpec

T = TypeVar("T")


@dataclass
class System:
    """What a run evaluates, as the task loop sees it."""

    header: dict[str, Any]  # the run record's model section
    evaluate: Callable[[TaskSpec], tuple[Any, dict[str, Any]]]  # -> (TaskResult, extra record fields)
    counted: Callable[[], int]  # texts or pairs processed so far
    stats: Callable[[], dict[str, Any]]  # the model cores' batch counters, for the run record
    meta: Any = None  # ModelMeta for model_meta.json
    embedding_dim: int | None = None
    tasks_evaluated: list[Any] = field(default_factory=list)  # task objects of the current task, for their items
    unknown_qrels: dict[str, QrelGaps] = field(default_factory=dict)  # per task, qrels naming what the split lacks
    cores: list[Any] = field(default_factory=list)  # the model cores, whose worker pools the run ends
    prefetcher: Prefetcher | None = None  # encodes ahead of evaluation, when the run is pipelined

    def placement(self) -> dict[str, Any]:
        """Where each shard ran since the last call, and what was redone, per pooled core (none: empty)."""
        logs = {core.KIND: core.pool.log.take() for core in self.cores if core.pool is not None}
        return {"workers": logs} if logs else {}

    def close(self) -> None:
        """Stop encoding ahead, then the worker pools."""
        if self.prefetcher is not None:
            self.prefetcher.close()
        for core in self.cores:
            if core.pool is not None:
                core.pool.close()


class TaskLoader:
    """Fresh mteb task objects with their data, as the run's settings ask (mirror, subsample, items).

    `preload` loads and checks the data of the tasks a run will evaluate before any model is loaded,
    so a missing or broken copy stops the run within seconds; each preloaded object serves its
    task's first evaluation. `datasets` keeps the data memory-mapped, so holding them costs little.
    """

    def __init__(self, config: RunConfig, evaluated: list[Any], fingerprints: dict[str, str | None]) -> None:
        self.config = config
        self.evaluated = evaluated
        self.fingerprints = fingerprints
        self.unknown_qrels: dict[str, QrelGaps] = {}
        self.ready: dict[str, Any] = {}
        self._loading = threading.Condition()  # notified as each task's data comes in, and at the end
        self._loading_over = False

    def preload(self, specs: list[TaskSpec], progress: RunProgress) -> None:
        """Load and check the data of `specs` now (see the class docstring)."""
        try:
            self._preload(specs, progress)
        finally:
            with self._loading:
                self._loading_over = True
                self._loading.notify_all()

    def loaded(self, name: str) -> Any:
        """`name`'s preloaded task once its data is in; None if preloading ended without it."""
        with self._loading:
            self._loading.wait_for(lambda: name in self.ready or self._loading_over)
            return self.ready.get(name)

    def _preload(self, specs: list[TaskSpec], progress: RunProgress) -> None:
        if specs and self.config.data_dir is None:  # hub data: cached data must not wait on retries
            offline_unless_reachable(specs[0].repo, specs[0].revision)
        missing: list[TaskSpec] = []  # every task is tried: one message names all data to fetch
        for k, spec in enumerate(specs, start=1):
            progress.loading_data(k, len(specs), spec.name)
            try:
                with mirror_dataset_cache(self.fingerprints[spec.name]):
                    task = self._load(spec)
                with self._loading:
                    self.ready[spec.name] = task
                    self._loading.notify_all()
            except HubUnreachable:
                missing.append(spec)
        if missing:
            names, repos = ", ".join(s.name for s in missing), ", ".join(s.repo for s in missing)
            raise unreachable("dataset", repos, subject=f"the data of task{'s' * (len(missing) > 1)} {names}")

    def __call__(self, spec: TaskSpec) -> Any:
        task = self.ready.pop(spec.name, None)
        if task is None:
            task = self._load(spec)
        self.evaluated.append(task)
        return task

    def fresh(self, spec: TaskSpec) -> Any:
        """A new task object with its data, for another evaluation of a task already evaluated (its items are
        not the result's, so it is not listed in `evaluated`)."""
        return self._build(spec)[0]

    def _build(self, spec: TaskSpec) -> tuple[Any, QrelGaps]:
        config = self.config
        task = build_task(
            spec,
            config.data_dir,
            capture_items=True,
            subsample=config.subsample,
            subsample_corpus=config.subsample_corpus,
        )
        return task, load_task_data(task, spec, config.data_dir)

    def _load(self, spec: TaskSpec) -> Any:
        task, gaps = self._build(spec)
        for line in gaps.warnings(spec.name):
            warn(line)
        self.unknown_qrels[spec.name] = gaps
        return task


def core_header(core: Any) -> dict[str, Any]:
    """What the run record says of a loaded core."""
    header = {"model": core.source.name, "model_path": core.source.path, "revision": core.source.revision}
    return {**header, "weights_not_matched": core.weights}  # listed whether or not the run was allowed


def _workers_header(cores: list[Any]) -> dict[str, Any]:
    """What the run record says of where the model work ran: the worker pools, else the forward passes this
    process ran at once (speed only, never a score)."""
    pools = {core.KIND: core.pool.workers for core in cores if core.pool is not None}
    streams = {core.KIND: core.streams for core in cores if core.pool is None}
    return {"workers": pools} if pools else {"streams": streams}


def visible_workers(config: RunConfig) -> WorkerOptions:
    """The run's worker options, with the default made concrete: every visible GPU when there are several."""
    if config.workers.pooled or config.load.device != "cuda":
        return config.workers
    import torch

    count = torch.cuda.device_count()
    return WorkerOptions(devices=tuple(f"cuda:{k}" for k in range(count))) if count > 1 else config.workers


def _loaded(config: RunConfig, load: Callable[..., Any], spec: Callable[[Any], ReplicaSpec]) -> Any:
    """A core loaded here and, when the run uses workers, given a pool of replicas (this process then keeps
    its copy on the CPU, for tokenising and for what the run record says of the model)."""
    workers = visible_workers(config)
    if not workers.pooled:
        return load(**vars(config.load))
    core = load(**{**vars(config.load), "device": "cpu"})
    core.pool = start_pool(workers, spec(core))
    return core


def _embedder(config: RunConfig, progress: RunProgress) -> BGEModel:
    choice = config.embedder
    recipe = choice.recipe  # type: ignore[union-attr]
    encoder = _loaded(
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


def _reranker(config: RunConfig, progress: RunProgress) -> BGERerankerModel:
    choice = config.reranker
    core = _loaded(
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


def _prefetcher(embedder: BGEModel, load: TaskLoader, pending: list[TaskSpec]) -> Prefetcher:
    """The encode phase ahead of evaluation for the pending tasks (`runner/prefetch.py`), started at once: each
    task is planned on the prefetcher's planning thread as soon as its data is loaded."""

    def plans() -> Iterator[tuple[str, list[str] | None, list[str]]]:
        for spec in pending:
            task = load.loaded(spec.name)
            if task is None:  # loading stopped (an error, raised where the data loads)
                return
            planned = planned_texts(task, partial(embedder.instruction_for, task.metadata))
            yield spec.name, planned, possible_texts(task) if planned is None else []

    def is_cached(text: str) -> bool:
        return embedder.cache.get(text_key(text)) is not None

    return Prefetcher(plans(), is_cached, embedder.encode_ahead, embedder.tokenize_ahead).start()


def _while_loading_data(
    config: RunConfig, load: TaskLoader, pending: list[TaskSpec], progress: RunProgress, load_models: Callable[[], T]
) -> T:
    """`load_models()` in a thread while the pending tasks' data loads here: reading weights and parquet files
    overlap (both release the GIL for their reads and copies), so start-up takes the longer of the two, not
    their sum. Only where neither side can fail for a missing download: local mirrors (the plan found every
    file) and local models in this process; hub data is found before any weights are read, and worker pools
    (processes, Ray, which wants the main thread) start after the data."""
    sources = [c.source for c in (config.embedder, config.reranker) if c is not None]
    pooled = visible_workers(config).pooled  # several GPUs, --devices or --ray
    side_by_side = config.data_dir is not None and not pooled and all(s.local_dir for s in sources)
    if not side_by_side:
        load.preload(pending, progress)
        return load_models()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="cmteb-load-models") as pool:
        models = pool.submit(load_models)
        try:
            load.preload(pending, progress)  # a data error is raised once the models are loaded: nothing is written
        except BaseException:
            _stop_encoding_ahead(models)
            raise
        return models.result()


def _stop_encoding_ahead(models: Future) -> None:
    """Once the models are loaded, stop the encoding ahead an embedder started (the run stops on an error)."""
    try:
        loaded = models.result()
    except BaseException:  # the data error is the one reported
        return
    for model in loaded if isinstance(loaded, tuple) else (loaded,):
        if getattr(model, "prefetcher", None) is not None:
            model.prefetcher.close()


def load_system(plan: Plan, progress: RunProgress, pending: list[TaskSpec]) -> System:
    """Define every task and load the data of the `pending` ones, then load the run's model cores and wire
    them to mteb's evaluation."""
    config = plan.config
    for spec in config.specs:  # every task is defined (mteb class, mirror, layout) before weights are read
        build_task(spec, config.data_dir)
    evaluated: list[Any] = []
    load = TaskLoader(config, evaluated, plan.fingerprints)
    if config.embedder is not None and config.embedder.lexical is not None:
        load.preload(pending, progress)
        return _lexical(config, load, {**config.settings(), "device": "cpu", **config.identity()})
    embedder, cross = _while_loading_data(
        config,
        load,
        pending,
        progress,
        lambda: (
            _embedder_encoding_ahead(config, load, pending, progress) if config.embedder is not None else None,
            _reranker(config, progress) if config.reranker is not None else None,
        ),
    )
    cores = [m.encoder for m in (embedder,) if m] + [m.reranker for m in (cross,) if m]
    header = {**config.settings(), "device": config.load.device, **config.identity(), **_workers_header(cores)}
    header["pipeline"] = config.pipeline  # encoding ran ahead of evaluation: speed only, never a score
    header |= {"arithmetic": arithmetic_record(config.load.device or "cpu"), "probe": probe_header(cores)}
    header |= _recipes(config)
    for model in (embedder, cross):
        if model is not None:
            model.probe = ProbeChoice()
    if cross is None:
        return _embedder_system(config, embedder, load, progress, header)  # type: ignore[arg-type]
    rerank_core = cross.reranker
    if embedder is None:
        return System(
            header={**core_header(rerank_core), **header, "kind": "reranker"},
            evaluate=_reranker_evaluation(config, cross, load, header["probe"]["threshold"]),
            counted=lambda: rerank_core.stats.texts,
            stats=lambda: {"reranker": rerank_core.stats.as_dict()},
            meta=cross.mteb_model_meta,
            tasks_evaluated=evaluated,
            unknown_qrels=load.unknown_qrels,
            cores=cores,
        )
    return _two_stage(config, embedder, cross, load, header, cores)


def _recipes(config: RunConfig) -> dict[str, Any]:
    """What the run record says of how each model runs: its family's recipe (`models/families.py`)."""
    recipes = {}
    if config.embedder is not None and config.embedder.recipe is not None:
        recipes["model_recipe"] = config.embedder.recipe.as_record()
    if config.reranker is not None:
        recipes["reranker_recipe"] = config.reranker.recipe.as_record()
    return recipes


def _planned(embedder: BGEModel, spec: TaskSpec) -> dict[str, Any] | None:
    """What the run record keeps of a task's instructions (None: none at all)."""
    planned = embedder.instructions.get(spec.name)
    return planned.as_record() if planned is not None and planned.source != "none" else None


def _reranker_evaluation(
    config: RunConfig, cross: BGERerankerModel, load: TaskLoader, threshold: float
) -> Callable[[TaskSpec], tuple[Any, dict[str, Any]]]:
    """A reranker alone scoring each query's given candidates, with its probe and measured noise."""

    def evaluate_reranker(spec: TaskSpec) -> tuple[Any, dict[str, Any]]:
        cross.probe.take()  # only this task's pairs
        result = evaluate(cross, load(spec), config.load.batch_size)
        noise = task_noise(config, load.fresh, spec, cross, result, threshold)
        return result, {"probe": reranker_probe(cross)} | ({"noise": noise} if noise else {})

    return evaluate_reranker


def _embedder_encoding_ahead(
    config: RunConfig, load: TaskLoader, pending: list[TaskSpec], progress: RunProgress
) -> BGEModel:
    """The embedder; in a pipelined run of an embedding model alone, encoding ahead from the moment it is
    loaded, while the data of later tasks still loads."""
    embedder = _embedder(config, progress)
    if config.pipeline and config.reranker is None:
        embedder.prefetcher = _prefetcher(embedder, load, pending)
    return embedder


def _embedder_system(
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
        extra = {"instructions_used": _planned(embedder, spec), "probe": embedder_probe(embedder)}
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


def _lexical(config: RunConfig, load: TaskLoader, header: dict[str, Any]) -> System:
    """The `bm25` baseline: BM25 through mteb's search on Retrieval and Reranking, TF-IDF vectors fitted on
    each task's texts elsewhere."""
    from dataclasses import asdict

    from cmteb.models.lexical import lexical_search
    from cmteb.models.lexical_model import LexicalEncoder, lexical_meta
    from cmteb.tasks.types import TYPES
    from cmteb.tasks.validate import task_texts

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

    return System(
        header={
            "model": source.name,
            "revision": source.revision,
            **header,
            "kind": LEXICAL_KIND,
            "lexical": asdict(settings),
        },  # type: ignore[call-overload]
        evaluate=evaluate_lexical,
        counted=lambda: encoder.texts,
        stats=dict,
        meta=meta,
        embedding_dim=settings.width,  # type: ignore[union-attr]
        tasks_evaluated=load.evaluated,
        unknown_qrels=load.unknown_qrels,
    )


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
            "instructions_used": _planned(embedder, spec),
            "probe": embedder_probe(embedder) + reranker_probe(cross),
        }

    return System(
        header={
            **header,
            "kind": "two-stage",
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
