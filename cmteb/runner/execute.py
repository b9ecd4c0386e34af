"""`run`: a run in phases.

1. config: every setting resolved once (`resolve_config`);
2. plan: the data of every task checked and fingerprinted, the result store asked (`make_plan`);
   when it holds every task, its results are copied and nothing is loaded;
3. load: every task defined, then the model cores loaded (`load_system`);
4. evaluate and record, task by task: a current result is kept, a stored one copied, otherwise
   mteb evaluates the task and its files, run-record entry and store entry are written.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock

from cmteb.errors import CmtebError, warn
from cmteb.hub import hub_offline, missing_data, surely_uncached
from cmteb.results.files import read_run_record, settings_text
from cmteb.results.outcome import RunSummary, TaskOutcome
from cmteb.results.reader import result_file_score
from cmteb.runner.config import RunConfig, resolve_config
from cmteb.runner.plan import Plan, make_plan
from cmteb.runner.progress import RunProgress
from cmteb.runner.record import (
    Evaluation,
    check_writable,
    is_current,
    matches,
    result_path,
    reuse,
    write_evaluated,
)
from cmteb.tasks.mirror import mirror_dataset_cache
from cmteb.tasks.qrel_gaps import QrelGaps
from cmteb.tasks.registry import TaskSpec

if TYPE_CHECKING:  # loading a model pulls torch and mteb: imported only when a run gets that far
    from cmteb.runner.systems import System

__all__ = ["RunSummary", "TaskOutcome", "execute", "run"]


def run(model: str | None = None, **options: Any) -> RunSummary:
    """Evaluate an embedding model, a reranker, or both in two stages on C-MTEB tasks.

    `model` is a hub id, a local directory, or `m3e-small` (the bundled model); `options` are
    `resolve_config`'s (reranker, tasks, types, protocol, data_dir, output_dir, batch_size, ...).
    Writes one mteb TaskResult JSON per task and returns a summary. A task whose result exists for
    the same system, settings, dataset revision and data is skipped unless `overwrite`.
    """
    return execute(resolve_config(model, **options))


def execute(config: RunConfig) -> RunSummary:
    """Run the phases for a resolved configuration."""
    started = time.perf_counter()
    plan = make_plan(config)
    if plan.all_stored():  # nothing changed since every task was evaluated: load nothing
        return _replay(plan, started)
    folder = config.result_folder
    pending = _pending(plan, folder)
    _refuse_data_not_at_hand(config, pending)
    # torch, transformers and mteb are imported from here on: input errors above come within seconds.
    from cmteb.models.devices import pick_device
    from cmteb.runner.evaluate import quiet_third_party
    from cmteb.runner.systems import load_system

    if not config.workers.ray:  # a GPU asked for and absent: said before minutes of data loading
        pick_device(config.load.device)
    quiet_third_party(config.debug)
    _warn_about_instruction(config)
    with RunProgress(len(config.specs), enabled=config.show_progress) as progress:
        # Data first, then weights, then the output folder: bad input leaves nothing behind.
        system = load_system(plan, progress, pending)
        try:
            check_writable(folder)
            summary = _new_summary(config, folder, system.embedding_dim)
            for k, spec in enumerate(config.specs, start=1):
                progress.start_task(k, spec.name)
                summary.outcomes.append(_task(plan, system, folder, spec))
                progress.finish_task()
        finally:
            system.close()
    summary.seconds = time.perf_counter() - started
    return summary


def _new_summary(config: RunConfig, folder: Path, embedding_dim: int | None) -> RunSummary:
    """An empty summary of this run: where results go, under which name, on which data and settings."""
    return RunSummary(
        config.system_name,
        config.system_revision,
        folder,
        embedding_dim,
        protocol=config.protocol.name,
        naming=config.naming,
        recipe=config.recipe_text(),
        data=config.data_source,
        settings=settings_text(config.variant),
    )


def _refuse_data_not_at_hand(config: RunConfig, pending: list[TaskSpec]) -> None:
    """With the hub off and no --data-dir, tasks of which no cache holds a copy stop the run before the slow
    imports (`datasets` would say the same after them)."""
    if config.data_dir is not None or not hub_offline():
        return
    absent = set(surely_uncached([spec.repo for spec in pending]))
    missing = [spec for spec in pending if spec.repo in absent]
    if missing:
        raise missing_data([spec.name for spec in missing], [spec.repo for spec in missing])


def _pending(plan: Plan, folder: Path) -> list[TaskSpec]:
    """The tasks this run will evaluate: neither current in `folder` nor in the result store (a task that
    another run finishes meanwhile is still skipped when its turn comes)."""
    records = read_run_record(folder)["tasks"] if folder.is_dir() else {}
    pending = []
    for spec in plan.config.specs:
        path = result_path(folder, spec)
        kept = not plan.config.overwrite and matches(path, records.get(spec.name, {}), plan.evaluation_key(spec.name))
        if not kept and plan.stored(spec.name) is None:
            pending.append(spec)
    return pending


def _warn_about_instruction(config: RunConfig) -> None:
    """Instructions other than the model family's own make scores incomparable with the published ones."""
    choice = config.embedder
    if choice is None or choice.documented or choice.recipe is None:
        return
    family = choice.recipe.family or "this model"
    warn(
        f"{choice.source.name} runs with other instructions than {family}'s own (--instruction, --instructions or "
        "--no-instruction): its scores are not comparable with the published ones"
    )


def _task(plan: Plan, system: System, folder: Path, spec: TaskSpec) -> TaskOutcome:
    """One task: kept when current, copied when stored, else evaluated and recorded."""
    protocol = plan.config.protocol
    path = result_path(folder, spec)
    # One lock per task: a second run into the same folder waits here, then finds the result and
    # skips the task instead of computing and writing it twice.
    with FileLock(folder / f".{spec.name}.lock"):
        previous = read_run_record(folder)["tasks"].get(spec.name, {})
        if not plan.config.overwrite and is_current(path, previous, plan.evaluation_key(spec.name)):
            score = result_file_score(protocol, spec, path)
            first = previous.get("first_stage_score")
            return TaskOutcome(spec, "skipped", score, previous.get("seconds", 0.0), path, None, first)
        stored = plan.stored(spec.name)  # read once: the store is on disk
        if stored is not None:
            return reuse(plan, spec, folder, path, stored)
        evaluated = _evaluate(plan, system, spec)
        try:
            write_evaluated(plan, spec, folder, path, evaluated)
        except OSError as exc:  # every file is written atomically: what was there before is intact
            raise CmtebError(
                f"cannot write the results of {spec.name} to {folder} ({exc.strerror or exc}): free space there or "
                "pass another --output-dir, then rerun the same command to resume"
            ) from exc
    score = result_file_score(protocol, spec, path)
    first = evaluated.extra.get("first_stage_score")
    return TaskOutcome(spec, "ran", score, evaluated.seconds, path, evaluated.result, first)


def _evaluate(plan: Plan, system: System, spec: TaskSpec) -> Evaluation:
    """Evaluate one task with mteb; what came out, for the record."""
    started = time.perf_counter()
    counted_before, model_before = system.counted(), _model_seconds(system.stats())
    system.tasks_evaluated.clear()
    with mirror_dataset_cache(plan.fingerprints[spec.name]):
        result, extra = system.evaluate(spec)
    probe = extra.pop("probe", [])
    stats = {**system.stats(), **_device_memory()}
    # The last task object evaluated holds the scores of the result (two-stage: the reranker's).
    last = system.tasks_evaluated[-1]
    return Evaluation(
        result=result,
        extra=extra,
        seconds=time.perf_counter() - started,
        model_seconds=_model_seconds(stats) - model_before,
        texts=system.counted() - counted_before,
        items=list(getattr(last, "captured_items", [])),
        probe=probe,
        qrel_gaps=system.unknown_qrels.get(spec.name, QrelGaps()),
        meta=system.meta,
        header=system.header,
        stats=stats,
        placement=system.placement(),
        embedding_dim=system.embedding_dim,
    )


def _model_seconds(stats: dict[str, Any]) -> float:
    """Seconds the model cores have spent in their batched forward passes so far (tokenising not included)."""
    return sum(v["seconds"] for v in stats.values() if isinstance(v, dict) and "seconds" in v)


def _device_memory() -> dict[str, int]:
    """The GPU memory peak so far, when this process uses a GPU: what a bigger batch has room for."""
    import torch

    if not torch.cuda.is_initialized():
        return {}
    return {"gpu_peak_memory_bytes": max(torch.cuda.max_memory_allocated(d) for d in range(torch.cuda.device_count()))}


def _replay(plan: Plan, started: float) -> RunSummary:
    """Answer a whole run from the result store: each task's stored result, copied into the folder."""
    config = plan.config
    folder = config.result_folder
    check_writable(folder)
    summary = _new_summary(config, folder, None)
    for spec in config.specs:
        stored = plan.stored(spec.name)
        summary.embedding_dim = stored.entry.get("embedding_dim")  # type: ignore[union-attr]
        path = result_path(folder, spec)
        with FileLock(folder / f".{spec.name}.lock"):
            previous = read_run_record(folder)["tasks"].get(spec.name, {})
            if is_current(path, previous, plan.evaluation_key(spec.name)):
                outcome = TaskOutcome(spec, "skipped", result_file_score(config.protocol, spec, path), 0.0, path)
            else:
                outcome = reuse(plan, spec, folder, path, stored)  # type: ignore[arg-type]
        summary.outcomes.append(outcome)
    summary.seconds = time.perf_counter() - started
    return summary
