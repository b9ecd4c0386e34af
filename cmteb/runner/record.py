"""Record a task's outcome: its result file, per-item values, model metadata, run-record entry and store entry.

Every file is written atomically (temp file, then rename). The run record is updated under a lock,
since several runs may write into one folder.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from filelock import FileLock

from cmteb.errors import CmtebError, warn
from cmteb.io import atomic_write_bytes, atomic_write_json, remove_orphan_temps
from cmteb.results.files import (
    CHECKSUMS,
    MODEL_META,
    REWRITING,
    RUN_RECORD,
    checksum_problem,
    file_checksums,
    package_versions,
    read_run_record,
    write_task_result,
)
from cmteb.results.items import ITEMS_SUFFIX, experiment_items, items_path, write_items
from cmteb.results.meta import folder_model_meta
from cmteb.results.outcome import TaskOutcome
from cmteb.results.probe import PROBE_SUFFIX, probe_path, write_probe
from cmteb.results.reader import parse_result_file, result_file_score
from cmteb.results.run_record import TaskEntry
from cmteb.runner.arithmetic import blas_threads
from cmteb.runner.plan import Plan
from cmteb.runner.store import StoredResult
from cmteb.tasks.qrel_gaps import QrelGaps
from cmteb.tasks.registry import TaskSpec

#: Packages whose versions go into the run record.
RECORDED_PACKAGES = ("cmteb", "mteb", "torch", "transformers", "datasets", "huggingface_hub", "numpy", "scikit-learn")


def now() -> str:
    """The current UTC time, as the run record writes it."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def check_writable(folder: Path) -> None:
    """Refuse, in one line, an output folder that cannot be written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".cmteb-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise CmtebError(f"cannot write results to {folder} ({exc.strerror}): pass a writable --output-dir") from exc


def result_path(folder: Path, spec: TaskSpec) -> Path:
    """A task's result file in `folder`: mteb names it after the task it ran."""
    return folder / f"{spec.run_as or spec.name}.json"


def matches(path: Path, previous: dict[str, Any], expected: dict[str, Any]) -> bool:
    """Whether `previous`, the run-record entry of the result file at `path`, holds `expected`, this run's
    evaluation key (`plan.evaluation_key`)."""
    return path.is_file() and all(previous.get(k) == v for k, v in expected.items())


def is_current(path: Path, previous: dict[str, Any], expected: dict[str, Any]) -> bool:
    """Whether the result file at `path` `matches` and is still as it was written (a changed or damaged one
    is noted, then evaluated again)."""
    if not matches(path, previous, expected):
        return False
    problem = _damage(path, previous)
    if problem is not None:
        warn(f"{path.stem}: the existing result cannot be trusted ({problem}): it is evaluated again")
    return problem is None


def _damage(path: Path, previous: dict[str, Any]) -> str | None:
    """Why an existing result file differs from what its run-record entry recorded, or None."""
    checksums = previous.get(CHECKSUMS)
    if isinstance(checksums, dict):  # entries written before checksums were recorded have none
        problem = checksum_problem(path.parent, checksums)
        if problem is not None:
            return problem
    try:
        parse_result_file(path)
    except CmtebError:
        return f"{path.name} does not parse as a result"
    return None


def record_task(folder: Path, task: str, entry: TaskEntry, header: dict[str, Any]) -> None:
    """Add one task's entry to the run record, under a lock (several runs may share the folder)."""
    (folder / RUN_RECORD).parent.mkdir(parents=True, exist_ok=True)
    with FileLock(folder / ".run-record.lock"):
        remove_orphan_temps(folder / RUN_RECORD)  # a run killed while writing it: only lock holders write it
        record = read_run_record(folder)
        damaged = record.pop("damaged", None)
        if damaged:  # never overwrite what cannot be read: its entries may matter to someone
            aside = Path(f"{damaged}.damaged-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}")
            Path(damaged).replace(aside)
            warn(f"the run record {damaged} could not be read: kept as {aside}, a new one is started")
        record["tasks"][task] = entry
        record.update(header)
        record.update({"python": platform.python_version(), "packages": package_versions(RECORDED_PACKAGES)})
        atomic_write_json(folder / RUN_RECORD, record)


def reuse(plan: Plan, spec: TaskSpec, folder: Path, path: Path, stored: StoredResult) -> TaskOutcome:
    """Make `stored`, the stored result of `spec`, this task's result in `folder`, recorded as reused."""
    started = time.perf_counter()
    prepare_task_files(folder, path, spec.name)
    for name in stored.entry["files"]:  # each copied atomically
        atomic_write_bytes(_stored_target(folder, path, name), stored.file(name).read_bytes())
    record = stored.entry["record"]
    seconds = time.perf_counter() - started
    entry: TaskEntry = {
        **record,
        **plan.this_run[spec.name],
        "seconds": round(seconds, 3),
        "evaluated_seconds": record.get("seconds"),
        "texts_encoded": 0,
        "reused_result": plan.keys[spec.name],
        CHECKSUMS: file_checksums(task_files(path)),
        "finished": now(),
    }
    record_task(folder, spec.name, entry, {**stored.entry["header"], **plan.config.identity()})
    score = result_file_score(plan.config.protocol, spec, path)
    return TaskOutcome(spec, "reused", score, seconds, path, None, record.get("first_stage_score"))


def task_files(path: Path) -> list[Path]:
    """A task's files beside its result file `path`: the result, its per-item values, its probe."""
    return [path, items_path(path), probe_path(path)]


def _stored_target(folder: Path, path: Path, name: str) -> Path:
    """Where a stored file named `name` goes when the stored result of the task at `path` is reused."""
    if name == MODEL_META:
        return folder / MODEL_META
    for suffix, target in ((ITEMS_SUFFIX, items_path(path)), (PROBE_SUFFIX, probe_path(path))):
        if name.endswith(suffix):
            return target
    return path


def prepare_task_files(folder: Path, path: Path, task: str) -> None:
    """Before a task's files are (re)written, under the task's lock: remove the temp files of a killed writer,
    and mark a recorded entry as being rewritten, so that a run stopped between the new files and the new entry
    reads as an interrupted rerun, not as files edited by hand."""
    for name in task_files(path):
        remove_orphan_temps(name)
    previous = read_run_record(folder)["tasks"].get(task)
    if previous is not None and any(name.is_file() for name in task_files(path)):
        record_task(folder, task, {**previous, REWRITING: now()}, {})


@dataclass(frozen=True)
class Evaluation:
    """What one task's evaluation produced, as the task loop hands it to `write_evaluated`."""

    result: Any  # mteb's TaskResult
    extra: dict[str, Any]  # what the system adds to the entry: instructions_used, noise, first_stage_score
    seconds: float
    model_seconds: float  # in the cores' batched forward passes
    texts: int  # texts (or pairs) the model processed
    items: list[dict[str, Any]]  # per-item values (`results/items.py`)
    probe: list[dict[str, Any]]  # the probe texts' vectors or scores (`results/probe.py`)
    qrel_gaps: QrelGaps
    meta: Any  # mteb's ModelMeta of the model, for model_meta.json
    header: dict[str, Any]  # the run record's header
    stats: dict[str, Any]  # the cores' batch counters
    placement: dict[str, Any]  # where each shard ran, with workers
    embedding_dim: int | None


def task_entry(plan: Plan, spec: TaskSpec, path: Path, evaluated: Evaluation) -> TaskEntry:
    """The run-record entry of an evaluated task whose files are written at `path`."""
    entry: TaskEntry = {
        "dataset_repo": spec.repo,
        **plan.evaluation_key(spec.name),  # type: ignore[typeddict-item]
        **plan.this_run[spec.name],
        "unknown_qrel_documents": evaluated.qrel_gaps.documents,
        "unknown_qrel_queries": evaluated.qrel_gaps.queries,
        **evaluated.extra,
        "seconds": round(evaluated.seconds, 3),
        "model_seconds": round(evaluated.model_seconds, 3),
        "texts_encoded": evaluated.texts,
        "blas_threads": blas_threads(),
        **evaluated.placement,
        CHECKSUMS: file_checksums(task_files(path)),
        "finished": now(),
    }
    return entry


def write_evaluated(plan: Plan, spec: TaskSpec, folder: Path, path: Path, evaluated: Evaluation) -> None:
    """Write what an evaluation produced (result, items, metadata), then its run-record and store entries."""
    config = plan.config
    prepare_task_files(folder, path, spec.name)
    write_items(path, evaluated.items + experiment_items(evaluated.result, spec.type))
    write_probe(path, evaluated.probe)
    provenance = {
        "protocol": config.protocol.name,
        "dataset_repo": spec.repo,
        "qrels_repo": spec.qrels_repo,
        "splits": list(spec.splits),
        "metric": spec.metric,
        "data_source": config.data_source,
        **{k: v for k, v in evaluated.extra.items() if k == "instructions_used"},
    }
    write_task_result(folder, evaluated.result, provenance)
    if evaluated.meta is not None:  # with the first result: a folder never holds metadata alone
        meta = folder_model_meta(
            evaluated.meta, name=config.system_name, revision=config.system_revision, variant=config.variant
        )
        atomic_write_json(folder / MODEL_META, meta.to_dict())
    entry = task_entry(plan, spec, path, evaluated)
    record_task(folder, spec.name, entry, {**evaluated.header, "stats": evaluated.stats})
    if plan.store is not None:
        files = [f for f in (*task_files(path), folder / MODEL_META) if f.is_file()]
        stored = {
            "record": entry,
            "score": result_file_score(config.protocol, spec, path),
            "header": evaluated.header,
            "embedding_dim": evaluated.embedding_dim,
        }
        plan.store.put(plan.keys[spec.name], files, stored)
