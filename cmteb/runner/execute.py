"""Run a model on registered tasks: select, resume, evaluate with mteb, write results, summarise.

Three kinds of run:
- an embedding model (`model`) on any tasks, by default all registered ones;
- a reranker alone (`reranker`) on the Reranking tasks, scoring each query's given candidates;
- two stages (`model` and `reranker`) on Retrieval tasks: the embedder retrieves, the reranker
  re-ranks its top k; stored as the system `M+R`, never in M's own folder.
"""

from __future__ import annotations

import logging
import platform
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from filelock import FileLock

from cmteb.assets import BUNDLED_MODEL_HUB_ID, BUNDLED_MODEL_NAME, SAMPLES_DIR, bundled_model_dir
from cmteb.errors import CmtebError
from cmteb.results.files import (
    MODEL_META,
    RUN_RECORD,
    atomic_write_json,
    package_versions,
    read_run_record,
    read_task_result,
    result_dir,
    write_task_result,
)
from cmteb.tasks.protocols import DEFAULT_PROTOCOL, Protocol, resolve_protocol
from cmteb.tasks.registry import TaskSpec

logger = logging.getLogger(__name__)

#: Packages whose versions go into the run record.
RECORDED_PACKAGES = ("cmteb", "mteb", "torch", "transformers", "datasets", "huggingface_hub", "numpy", "scikit-learn")
DEFAULT_RERANK_TOP_K = 100


@dataclass
class TaskOutcome:
    """What happened to one task in a run."""

    spec: TaskSpec
    status: str  # "ran" or "skipped" (result already there)
    score: float
    seconds: float
    path: Path
    loaded: Any = None  # the mteb TaskResult, when already in memory
    first_stage_score: float | None = None  # two-stage runs: the embedder's own score

    @property
    def result(self) -> Any:
        """The mteb TaskResult (read from the result file on first use when not in memory)."""
        if self.loaded is None and self.path.is_file():
            self.loaded = read_task_result(self.path)
        return self.loaded


@dataclass
class RunSummary:
    """The outcome of `run`: where results went and one row per task."""

    model_name: str
    revision: str | None
    output_dir: Path
    embedding_dim: int | None
    outcomes: list[TaskOutcome] = field(default_factory=list)
    seconds: float = 0.0
    protocol: str = "mteb-cmn-v1"


@dataclass(frozen=True)
class ModelChoice:
    """The model argument after resolving the bundled alias."""

    path: str
    name: str | None
    pooling: str | None


def choose_model(model: str, name: str | None, pooling: str | None) -> ModelChoice:
    """Resolve `m3e-small` to the bundled model; apply per-model defaults for pooling."""
    from cmteb.models.defaults import default_pooling

    if model == BUNDLED_MODEL_NAME:
        return ModelChoice(str(bundled_model_dir()), name or BUNDLED_MODEL_HUB_ID, pooling or "mean")
    return ModelChoice(model, name, pooling or default_pooling(name or model))


def warn(message: str) -> None:
    """A one-line warning on stderr (the progress display keeps to its own lines)."""
    print(f"cmteb: warning: {message}", file=sys.stderr)


def data_source(data_dir: Path | None) -> str:
    """Where the data came from: "hub", a "local" mirror, or the bundled "samples"."""
    if data_dir is None:
        return "hub"
    return "samples" if Path(data_dir).resolve() == SAMPLES_DIR.resolve() else "local"


def _check_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".cmteb-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise CmtebError(f"cannot write results to {folder} ({exc.strerror}): pass a writable --output-dir") from exc


def _quiet_third_party(debug: bool) -> None:
    """Keep the console to cmteb's own progress and summary unless --debug."""
    import datasets
    import transformers

    if not debug:
        datasets.disable_progress_bars()
        transformers.utils.logging.disable_progress_bar()
        # Their errors reach the user as cmteb's own one-line messages.
        for name in ("mteb", "datasets", "transformers", "sentence_transformers"):
            logging.getLogger(name).setLevel(logging.CRITICAL)


def _select_specs(
    tasks: Sequence[str] | None,
    types: Sequence[str] | None,
    *,
    has_model: bool,
    has_reranker: bool,
    protocol: Protocol,
) -> list[TaskSpec]:
    if has_reranker:
        allowed = "Retrieval" if has_model else "Reranking"
        default_types = None if tasks else [allowed]
        specs = protocol.select(tasks, types or default_types)
        wrong = [s.name for s in specs if s.type != allowed]
        if wrong:
            what = (
                "a two-stage run (--model with --reranker) takes Retrieval"
                if has_model
                else "a reranker alone takes Reranking"
            )
            raise CmtebError(f"{what} tasks, not {', '.join(wrong)}: drop them from --tasks/--types")
    else:
        specs = protocol.select(tasks, types)
    if not specs:
        raise CmtebError("no task matches --tasks/--types: `cmteb tasks` lists the registered tasks")
    return specs


#: Memory for one block of query x corpus scores in exact search (float32).
SCORE_BLOCK_BYTES = 1 << 30


def _searchable(model: Any, task: Any) -> Any:
    """For retrieval, mteb's exact search with a corpus chunk sized so that one block of
    query x document scores stays within SCORE_BLOCK_BYTES, however large the corpus: mteb's
    default chunk of 50,000 documents makes a 4.6 GB block for T2Retrieval's 22,812 queries."""
    if task.metadata.type not in ("Retrieval", "Reranking"):
        return model
    from mteb.models.search_wrappers import SearchEncoderWrapper

    n_queries = max(len(split["queries"]) for subset in task.dataset.values() for split in subset.values())
    return SearchEncoderWrapper(model, corpus_chunk_size=corpus_chunk_size(n_queries))


def corpus_chunk_size(n_queries: int) -> int:
    """Documents scored at once against `n_queries` queries: one float32 score block within
    SCORE_BLOCK_BYTES, at most mteb's default of 50,000 and at least 1,000."""
    return max(1_000, min(50_000, SCORE_BLOCK_BYTES // (4 * max(1, n_queries))))


def _evaluate(model: Any, task: Any, batch_size: int, **kwargs: Any) -> Any:
    import mteb

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mteb.evaluate(
            model,
            task,
            cache=None,
            overwrite_strategy="always",
            show_progress_bar=False,
            encode_kwargs={"batch_size": batch_size, "show_progress_bar": False},
            **kwargs,
        ).task_results[0]


@dataclass
class System:
    """What a run evaluates, as the task loop sees it."""

    name: str
    revision: str | None
    settings: dict[str, Any]  # everything besides the data that changes scores: resume keys on it
    header: dict[str, Any]  # the run record's model section
    evaluate: Callable[[TaskSpec], tuple[Any, dict[str, Any]]]  # -> (TaskResult, extra record fields)
    counted: Callable[[], int]  # texts or pairs processed so far
    stats: Callable[[], dict[str, Any]]  # the model cores' batch counters, for the run record
    meta: Any = None  # ModelMeta for model_meta.json
    embedding_dim: int | None = None


def _embedding_cache(encoder: Any, cache_dir: Path | str | None, use_cache: bool, batch_invariant: bool) -> Any:
    """The embedding cache of this model and its settings (memory only without a known revision)."""
    from cmteb.runner.cache import EmbeddingCache, default_cache_dir

    namespace = {
        "model": encoder.source.name,
        "revision": encoder.source.revision,
        "pooling": encoder.pooling,
        "normalize": encoder.normalize,
        "max_length": encoder.max_length,
        "precision": encoder.precision,
        "format": 1,
        # One text per forward pass gives other float noise than shared batches: never mix the two.
        **({"batch_invariant": True} if batch_invariant else {}),
    }
    if not use_cache or encoder.source.revision is None:
        return EmbeddingCache(namespace)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache = EmbeddingCache(namespace, root)
    if cache.corrupt_shards:
        warn(
            f"embedding cache {cache.folder}: {len(cache.corrupt_shards)} damaged shards ignored; "
            "their texts are encoded again"
        )
    return cache


def _chosen_instruction(model_name: str, instruction: str | None, no_instruction: bool) -> str | None:
    """The query instruction a run uses: none, the one given, or the model's documented one."""
    from cmteb.models.defaults import default_instruction

    if no_instruction:
        return None
    return instruction if instruction is not None else default_instruction(model_name)


def _embedder_store(
    choice: ModelChoice,
    revision: str | None,
    cache_dir: Path | str | None,
    settings: dict[str, Any],
    instruction: str | None,
    no_instruction: bool,
) -> tuple[Any, Any] | None:
    """The model's source and the result store of it with these settings, without loading the model.

    None when the model has no known revision (nothing to key stored results on).
    """
    from cmteb.models.loading import pick_device, pooling_from_sentence_transformers, resolve_model
    from cmteb.runner.cache import default_cache_dir
    from cmteb.runner.store import ResultStore

    source = resolve_model(choice.path, name=choice.name, revision=revision)
    if source.revision is None:
        return None
    system = {
        **settings,
        "model": source.name,
        "revision": source.revision,
        "pooling": choice.pooling or pooling_from_sentence_transformers(source.local_dir) or "cls",
        "device": pick_device(settings["device"]),
        "instruction": _chosen_instruction(source.name, instruction, no_instruction),
    }
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return source, ResultStore(root, system)


def _copy_stored(stored: Any, folder: Path, path: Path) -> None:
    """Copy a stored result's files into a result folder, each atomically."""
    from cmteb.results.files import atomic_write_bytes
    from cmteb.results.items import items_path

    for name in stored.entry["files"]:
        if name == MODEL_META:
            target = folder / MODEL_META
        elif name.endswith(".items.parquet"):
            target = items_path(path)
        else:
            target = path
        atomic_write_bytes(target, stored.file(name).read_bytes())


def file_score(protocol: Protocol, spec: TaskSpec, path: Path) -> float:
    """A result file's score by the protocol's metric and split rule: the number every table shows for it."""
    from cmteb.results.reader import parse_result_file

    parsed = parse_result_file(path)
    value = protocol.task_score(spec, parsed.splits) if parsed is not None else None
    return float("nan") if value is None else value


def _result_score(protocol: Protocol, spec: TaskSpec, result: Any) -> float | None:
    """An in-memory TaskResult's score by the protocol's rules (the first stage of a two-stage run)."""
    from cmteb.results.files import task_result_json
    from cmteb.results.reader import parse_result_data

    parsed = parse_result_data(task_result_json(result), Path(f"{spec.name}.json"))
    return protocol.task_score(spec, parsed.splits)


def _is_current(path: Path, previous: dict[str, Any], expected: dict[str, Any]) -> bool:
    """Whether the result file at `path` was produced with `expected`'s protocol, data and settings."""
    return path.is_file() and all(previous.get(k) == expected.get(k) for k in RESUME_FIELDS)


def _reuse(
    stored: Any, key: str, spec: TaskSpec, folder: Path, path: Path, this_run: dict[str, Any], protocol: Protocol
) -> TaskOutcome:
    """Make a stored result this task's result in `folder`, recorded as reused."""
    started = time.perf_counter()
    _copy_stored(stored, folder, path)
    record = stored.entry["record"]
    seconds = time.perf_counter() - started
    entry = {
        **record,
        **this_run,
        "seconds": round(seconds, 3),
        "evaluated_seconds": record.get("seconds"),
        "texts_encoded": 0,
        "reused_result": key,
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    _record_task(folder, spec.name, entry, stored.entry["header"])
    score_ = file_score(protocol, spec, path)
    return TaskOutcome(spec, "reused", score_, seconds, path, None, record.get("first_stage_score"))


def _replay(
    store: Any,
    keys: dict[str, str],
    specs: list[TaskSpec],
    root: Path,
    source: Any,
    protocol: Protocol,
    this_run: dict[str, dict[str, Any]],
) -> RunSummary:
    """Answer a whole run from the result store: each task's stored result, copied into the folder."""
    started = time.perf_counter()
    folder = result_dir(root, source.name, source.revision)
    _check_writable(folder)
    summary = RunSummary(source.name, source.revision, folder, None, protocol=protocol.name)
    for spec in specs:
        stored = store.get(keys[spec.name])
        summary.embedding_dim = stored.entry.get("embedding_dim")
        path = folder / f"{spec.run_as or spec.name}.json"
        with FileLock(folder / f".{spec.name}.lock"):
            record = stored.entry["record"]
            if _is_current(path, read_run_record(folder)["tasks"].get(spec.name, {}), record):
                outcome = TaskOutcome(spec, "skipped", file_score(protocol, spec, path), 0.0, path)
            else:
                outcome = _reuse(stored, keys[spec.name], spec, folder, path, this_run[spec.name], protocol)
        summary.outcomes.append(outcome)
    summary.seconds = time.perf_counter() - started
    return summary


#: Run-record fields a stored or existing result must match to stand for a new evaluation.
RESUME_FIELDS = ("protocol", "dataset_revision", "data_fingerprint", "settings", "subsample")


def _record_task(folder: Path, task: str, entry: dict[str, Any], header: dict[str, Any]) -> None:
    """Add one task's entry to the run record, under a lock (several runs may share the folder)."""
    (folder / RUN_RECORD).parent.mkdir(parents=True, exist_ok=True)
    with FileLock(folder / ".run-record.lock"):
        record = read_run_record(folder)
        record["tasks"][task] = entry
        record.update(header)
        record.update({"python": platform.python_version(), "packages": package_versions(RECORDED_PACKAGES)})
        atomic_write_json(folder / RUN_RECORD, record)


def _core_header(core: Any) -> dict[str, Any]:
    return {
        "model": core.source.name,
        "model_path": core.source.path,
        "revision": core.source.revision,
        "max_length": core.max_length,
        "precision": core.precision,
        "device": core.device,
        "batch_size": core.batch_size,
    }


def run(
    model: str | None = None,
    *,
    reranker: str | None = None,
    rerank_top_k: int = DEFAULT_RERANK_TOP_K,
    tasks: Sequence[str] | None = None,
    types: Sequence[str] | None = None,
    data_dir: Path | str | None = None,
    output_dir: Path | str = "results",
    batch_size: int = 32,
    batch_tokens: int | None = None,
    batch_invariant: bool | None = None,
    max_length: int = 512,
    precision: str = "fp32",
    device: str | None = None,
    instruction: str | None = None,
    no_instruction: bool = False,
    pooling: str | None = None,
    normalize_scores: bool = False,
    subsample: int | None = None,
    subsample_corpus: int | None = None,
    allow_revision_mismatch: bool = False,
    cache_dir: Path | str | None = None,
    use_cache: bool = True,
    protocol: str | None = None,
    overwrite: bool = False,
    model_name: str | None = None,
    revision: str | None = None,
    trust_remote_code: bool = False,
    show_progress: bool = True,
    debug: bool = False,
) -> RunSummary:
    """Evaluate an embedding model, a reranker, or both in two stages on C-MTEB tasks.

    `model` is a hub id, a local directory, or `m3e-small` (the bundled model); `reranker` a
    cross-encoder's hub id or directory. Writes one mteb TaskResult JSON per task under
    `output_dir` and returns a summary. A task whose result exists for the same system, settings,
    dataset revision and data is skipped unless `overwrite`. `subsample` evaluates a deterministic
    subsample of N items per task (see `cmteb.tasks.subsample`), recorded with the result.
    `batch_invariant` encodes every text in a forward pass of its own, so that its embedding is
    bit-identical whatever else is encoded, cached or batched with it (default: on with `subsample`,
    whose small samples let k-means and classifiers turn 1e-7 of float noise into points).
    """
    from cmteb.tasks.mirror import check_mirrors, mirror_fingerprint, mirror_revisions

    started = time.perf_counter()
    if model is None and reranker is None:
        raise CmtebError("nothing to evaluate: pass --model, --reranker, or both")
    if rerank_top_k < 1:
        raise CmtebError(f"--rerank-top-k must be positive, got {rerank_top_k}")
    if batch_invariant is None:
        batch_invariant = subsample is not None
    if batch_invariant:  # one text per forward pass: its shape, and so its float result, depends on it alone
        batch_size, batch_tokens = 1, None
    chosen_protocol = resolve_protocol(protocol)
    protocol = chosen_protocol.name
    specs = _select_specs(
        tasks, types, has_model=model is not None, has_reranker=reranker is not None, protocol=chosen_protocol
    )
    data_dir = Path(data_dir) if data_dir is not None else None
    if data_dir is not None and not data_dir.is_dir():
        raise CmtebError(f"--data-dir {data_dir} does not exist: pass the folder that holds the local dataset copies")
    check_mirrors(data_dir, specs)  # a missing mirror fails before any model is loaded
    mirror_revision = mirror_revisions(data_dir, specs, allow_mismatch=allow_revision_mismatch)
    # Each protocol keeps its own results tree: the same task name means other data or splits.
    root = Path(output_dir) if protocol == DEFAULT_PROTOCOL else Path(output_dir) / protocol
    fingerprints = {spec.name: mirror_fingerprint(data_dir, spec) for spec in specs}
    # What a reused result records of this run rather than of the run that evaluated it.
    this_run = {
        spec.name: {
            "data_dir": str(data_dir) if data_dir else None,
            "data_source": data_source(data_dir),
            "mirror_revision": mirror_revision.get(spec.name),
        }
        for spec in specs
    }
    store = keys = None
    if model is not None and reranker is None and use_cache and not overwrite:
        found = _embedder_store(
            choose_model(model, model_name, pooling),
            revision,
            cache_dir,
            {
                "max_length": max_length,
                "precision": precision,
                "device": device,
                "batch_size": batch_size,
                "batch_tokens": batch_tokens,
                "batch_invariant": batch_invariant,
                "normalize": True,
            },
            instruction,
            no_instruction,
        )
        if found is not None:
            source, store = found
            keys = {s.name: store.key(s, protocol, fingerprints[s.name], subsample) for s in specs}
            # Nothing changed since every task was evaluated: copy the stored results, load nothing.
            if all(store.get(k) is not None for k in keys.values()):
                return _replay(store, keys, specs, root, source, chosen_protocol, this_run)
    from cmteb.models.adapter import BGEModel, BGERerankerModel
    from cmteb.models.defaults import default_instruction
    from cmteb.models.encoder import BGEEncoder
    from cmteb.models.reranker import BGEReranker
    from cmteb.results.items import experiment_items, items_path, write_items
    from cmteb.runner.progress import RunProgress
    from cmteb.tasks.build import build_task, load_task_data, mirror_dataset_cache

    for spec in specs:
        build_task(spec, data_dir)  # every task is defined before the model loads
    _quiet_third_party(debug)

    common = dict(
        batch_tokens=batch_tokens,
        max_length=max_length,
        batch_size=batch_size,
        precision=precision,
        device=device,
        trust_remote_code=trust_remote_code,
    )
    progress = RunProgress(len(specs), enabled=show_progress)
    encoder = embedder = None
    if model is not None:
        choice = choose_model(model, model_name, pooling)
        encoder = BGEEncoder.load(choice.path, pooling=choice.pooling, name=choice.name, revision=revision, **common)
        known = default_instruction(encoder.source.name)
        chosen_instruction = _chosen_instruction(encoder.source.name, instruction, no_instruction)
        if known is not None and chosen_instruction != known and any(s.instruction for s in specs):
            warn(
                f"{encoder.source.name} is documented with the query instruction {known!r}; this run uses "
                f"{chosen_instruction!r}, so its retrieval scores are not comparable with the published ones"
            )
        embedder = BGEModel(
            encoder,
            instruction=chosen_instruction,
            cache=_embedding_cache(encoder, cache_dir, use_cache, batch_invariant),
            on_texts=progress.add_texts,
            on_batch=progress.texts_done,
        )
    rerank_core = cross = None
    if reranker is not None:
        rerank_core = BGEReranker.load(
            reranker,
            normalize=normalize_scores,
            name=model_name if model is None else None,
            revision=revision if model is None else None,
            **common,
        )
        cross = BGERerankerModel(rerank_core, on_texts=progress.add_texts, on_batch=progress.texts_done)

    def task_for(spec: TaskSpec) -> Any:
        task = build_task(spec, data_dir, capture_items=True, subsample=subsample, subsample_corpus=subsample_corpus)
        unknown = load_task_data(task, spec, data_dir)
        if unknown:
            warn(
                f"{spec.name}: {unknown} qrels name documents missing from the corpus; they count as not "
                "retrieved, as trec_eval counts them"
            )
        unknown_qrels[spec.name] = unknown
        evaluated.append(task)
        return task

    unknown_qrels: dict[str, int] = {}

    evaluated: list[Any] = []  # task objects of the current task's evaluation, for their per-item values

    if encoder is not None and rerank_core is None:
        system = System(
            name=encoder.source.name,
            revision=encoder.source.revision,
            settings={
                "pooling": encoder.pooling,
                "max_length": encoder.max_length,
                "precision": precision,
                "instruction": embedder.instruction,
                **({"batch_invariant": True} if batch_invariant else {}),
            },
            header={
                **_core_header(encoder),
                "pooling": encoder.pooling,
                "normalize": encoder.normalize,
                "instruction": embedder.instruction,
                "batch_invariant": batch_invariant,
            },
            evaluate=lambda spec: (
                _evaluate(_searchable(embedder, task := task_for(spec)), task, batch_size),
                {"instruction_used": embedder.instructions_used.get(spec.name)},
            ),
            counted=lambda: encoder.stats.texts,
            stats=lambda: {"encoder": encoder.stats.as_dict(), "cache_hits": embedder.cache.hits},
            meta=embedder.mteb_model_meta,
            embedding_dim=encoder.embedding_dim,
        )
    elif encoder is None:
        system = System(
            name=rerank_core.source.name,
            revision=rerank_core.source.revision,
            settings={
                "max_length": rerank_core.max_length,
                "precision": precision,
                **({"batch_invariant": True} if batch_invariant else {}),
            },
            header={
                **_core_header(rerank_core),
                "kind": "reranker",
                "normalize_scores": normalize_scores,
                "batch_invariant": batch_invariant,
            },
            evaluate=lambda spec: (_evaluate(cross, task_for(spec), batch_size), {}),
            counted=lambda: rerank_core.stats.texts,
            stats=lambda: {"reranker": rerank_core.stats.as_dict()},
            meta=cross.mteb_model_meta,
        )
    else:

        def two_stage(spec: TaskSpec) -> tuple[Any, dict[str, Any]]:
            with tempfile.TemporaryDirectory(prefix="cmteb-first-stage-") as predictions:
                first_task = task_for(spec)
                first = _evaluate(
                    _searchable(embedder, first_task), first_task, batch_size, prediction_folder=predictions
                )
                second_task = task_for(spec)
                second_task.convert_to_reranking(predictions, top_k=rerank_top_k)
                second = _evaluate(cross, second_task, batch_size)
            return second, {
                "first_stage_score": _result_score(chosen_protocol, spec, first),
                "instruction_used": embedder.instructions_used.get(spec.name),
            }

        system = System(
            name=f"{encoder.source.name}+{rerank_core.source.name}",
            revision=f"{encoder.source.revision}+{rerank_core.source.revision}",
            settings={
                "pooling": encoder.pooling,
                "max_length": encoder.max_length,
                "precision": precision,
                "instruction": embedder.instruction,
                "rerank_top_k": rerank_top_k,
                **({"batch_invariant": True} if batch_invariant else {}),
            },
            header={
                "kind": "two-stage",
                "batch_invariant": batch_invariant,
                "first_stage": {
                    **_core_header(encoder),
                    "pooling": encoder.pooling,
                    "instruction": embedder.instruction,
                },
                "second_stage": {**_core_header(rerank_core), "normalize_scores": normalize_scores},
                "rerank_top_k": rerank_top_k,
            },
            evaluate=two_stage,
            counted=lambda: encoder.stats.texts + rerank_core.stats.texts,
            stats=lambda: {
                "encoder": encoder.stats.as_dict(),
                "reranker": rerank_core.stats.as_dict(),
                "cache_hits": embedder.cache.hits,
            },
        )

    folder = result_dir(root, system.name, system.revision)
    _check_writable(folder)
    summary = RunSummary(system.name, system.revision, folder, system.embedding_dim, protocol=protocol)
    with progress:
        for k, spec in enumerate(specs, start=1):
            progress.start_task(k, spec.name)
            fingerprint = fingerprints[spec.name]
            path = folder / f"{spec.run_as or spec.name}.json"  # mteb names the file after the task it ran
            # One lock per task: a second run into the same folder waits here, then finds the
            # result and skips the task instead of computing and writing it twice.
            with FileLock(folder / f".{spec.name}.lock"):
                previous = read_run_record(folder)["tasks"].get(spec.name, {})
                resume_key = {
                    "protocol": protocol,
                    "dataset_revision": spec.revision,
                    "data_fingerprint": fingerprint,
                    "settings": system.settings,
                    "subsample": subsample,
                }
                if not overwrite and _is_current(path, previous, resume_key):
                    old = read_task_result(path)
                    summary.outcomes.append(
                        TaskOutcome(
                            spec,
                            "skipped",
                            file_score(chosen_protocol, spec, path),
                            previous.get("seconds", 0.0),
                            path,
                            old,
                            previous.get("first_stage_score"),
                        )
                    )
                    progress.finish_task()
                    continue
                stored = store.get(keys[spec.name]) if store is not None else None
                if stored is not None:
                    summary.outcomes.append(
                        _reuse(stored, keys[spec.name], spec, folder, path, this_run[spec.name], chosen_protocol)
                    )
                    progress.finish_task()
                    continue
                task_started = time.perf_counter()
                counted_before = system.counted()
                evaluated.clear()
                with mirror_dataset_cache(fingerprint):
                    result, extra = system.evaluate(spec)
                seconds = time.perf_counter() - task_started
                # The last task object evaluated holds the scores of the result (two-stage: the reranker's).
                items = list(getattr(evaluated[-1], "captured_items", [])) + experiment_items(result, spec.type)
                write_items(path, items)
                write_task_result(
                    folder,
                    result,
                    {
                        "protocol": protocol,
                        "dataset_repo": spec.repo,
                        "qrels_repo": spec.qrels_repo,
                        "splits": list(spec.splits),
                        "metric": spec.metric,
                        "data_source": data_source(data_dir),
                        **{k: v for k, v in extra.items() if k == "instruction_used"},
                    },
                )
                if system.meta is not None:  # with the first result: a folder never holds metadata alone
                    atomic_write_json(folder / MODEL_META, system.meta.to_dict())
                entry = {
                    "dataset_repo": spec.repo,
                    **resume_key,
                    "data_dir": str(data_dir) if data_dir else None,
                    "data_source": data_source(data_dir),
                    "mirror_revision": mirror_revision.get(spec.name),
                    "unknown_qrel_documents": unknown_qrels.get(spec.name, 0),
                    **extra,
                    "seconds": round(seconds, 3),
                    "texts_encoded": system.counted() - counted_before,
                    "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                }
                _record_task(folder, spec.name, entry, {**system.header, "stats": system.stats()})
                if store is not None:
                    files = [path, items_path(path), folder / MODEL_META]
                    store.put(
                        keys[spec.name],
                        [f for f in files if f.is_file()],
                        {
                            "record": entry,
                            "score": file_score(chosen_protocol, spec, path),
                            "header": system.header,
                            "embedding_dim": system.embedding_dim,
                        },
                    )
            summary.outcomes.append(
                TaskOutcome(
                    spec,
                    "ran",
                    file_score(chosen_protocol, spec, path),
                    seconds,
                    path,
                    result,
                    extra.get("first_stage_score"),
                )
            )
            progress.finish_task()
    summary.seconds = time.perf_counter() - started
    return summary
