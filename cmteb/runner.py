"""Run a model on registered tasks: select, resume, evaluate with mteb, write results, summarise."""

from __future__ import annotations

import logging
import platform
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from cmteb.assets import BUNDLED_MODEL_HUB_ID, BUNDLED_MODEL_NAME, bundled_model_dir
from cmteb.errors import CmtebError
from cmteb.registry import TaskSpec, load_registry
from cmteb.results import (
    MODEL_META,
    RUN_RECORD,
    atomic_write_json,
    read_run_record,
    result_dir,
    score,
    write_task_result,
)

logger = logging.getLogger(__name__)

#: Packages whose versions go into the run record.
RECORDED_PACKAGES = ("cmteb", "mteb", "torch", "transformers", "datasets", "huggingface_hub", "numpy", "scikit-learn")


@dataclass
class TaskOutcome:
    """What happened to one task in a run."""

    spec: TaskSpec
    status: str  # "ran" or "skipped" (result already there)
    score: float
    seconds: float
    path: Path
    result: Any = None  # the mteb TaskResult


@dataclass
class RunSummary:
    """The outcome of `run`: where results went and one row per task."""

    model_name: str
    revision: str | None
    output_dir: Path
    embedding_dim: int
    outcomes: list[TaskOutcome] = field(default_factory=list)
    seconds: float = 0.0


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


def _package_versions() -> dict[str, str]:
    versions = {}
    for package in RECORDED_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


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
        for name in ("mteb", "datasets", "transformers", "sentence_transformers"):
            logging.getLogger(name).setLevel(logging.ERROR)


def run(
    model: str,
    *,
    tasks: Sequence[str] | None = None,
    types: Sequence[str] | None = None,
    data_dir: Path | str | None = None,
    output_dir: Path | str = "results",
    batch_size: int = 32,
    max_length: int = 512,
    precision: str = "fp32",
    device: str | None = None,
    instruction: str | None = None,
    no_instruction: bool = False,
    pooling: str | None = None,
    overwrite: bool = False,
    model_name: str | None = None,
    revision: str | None = None,
    trust_remote_code: bool = False,
    show_progress: bool = True,
    debug: bool = False,
) -> RunSummary:
    """Evaluate `model` (hub id, local directory, or `m3e-small`) on C-MTEB tasks.

    Writes one mteb TaskResult JSON per task under `output_dir` and returns a summary. A task
    whose result exists for the same model revision, dataset revision and data is skipped
    unless `overwrite`.
    """
    import mteb

    from cmteb.models.adapter import BGEModel
    from cmteb.models.defaults import default_instruction
    from cmteb.models.encoder import BGEEncoder
    from cmteb.progress import RunProgress
    from cmteb.tasks import build_task, mirror_dataset_cache, mirror_fingerprint

    started = time.perf_counter()
    registry = load_registry()
    specs = registry.select(list(tasks) if tasks else None, list(types) if types else None)
    if not specs:
        raise CmtebError("no task matches --tasks/--types: `cmteb tasks` lists the registered tasks")
    data_dir = Path(data_dir) if data_dir is not None else None
    if data_dir is not None and not data_dir.is_dir():
        raise CmtebError(f"--data-dir {data_dir} does not exist: pass the folder that holds the local dataset copies")
    # Build every task object first: a missing mirror fails before the model is loaded.
    for spec in specs:
        build_task(spec, data_dir)
    _quiet_third_party(debug)

    choice = choose_model(model, model_name, pooling)
    encoder = BGEEncoder.load(
        choice.path,
        pooling=choice.pooling,
        max_length=max_length,
        batch_size=batch_size,
        precision=precision,
        device=device,
        name=choice.name,
        revision=revision,
        trust_remote_code=trust_remote_code,
    )
    if no_instruction:
        chosen_instruction = None
    elif instruction is not None:
        chosen_instruction = instruction
    else:
        chosen_instruction = default_instruction(encoder.source.name)

    folder = result_dir(Path(output_dir), encoder.source.name, encoder.source.revision)
    _check_writable(folder)
    record = read_run_record(folder)
    summary = RunSummary(encoder.source.name, encoder.source.revision, folder, encoder.embedding_dim)

    with RunProgress(len(specs), enabled=show_progress) as progress:
        adapter = BGEModel(
            encoder, instruction=chosen_instruction, on_texts=progress.add_texts, on_batch=progress.texts_done
        )
        atomic_write_json(folder / MODEL_META, adapter.mteb_model_meta.to_dict())
        for k, spec in enumerate(specs, start=1):
            progress.start_task(k, spec.name)
            fingerprint = mirror_fingerprint(data_dir, spec)
            path = folder / f"{spec.name}.json"
            previous = record["tasks"].get(spec.name, {})
            if (
                not overwrite
                and path.is_file()
                and previous.get("dataset_revision") == spec.revision
                and previous.get("data_fingerprint") == fingerprint
                and previous.get("instruction") == chosen_instruction
            ):
                from cmteb.results import read_task_result

                summary.outcomes.append(
                    TaskOutcome(
                        spec, "skipped", score(read_task_result(path), spec.metric), previous.get("seconds", 0.0), path
                    )
                )
                progress.finish_task()
                continue
            task_started = time.perf_counter()
            texts_before = encoder.stats.texts
            with warnings.catch_warnings(), mirror_dataset_cache(fingerprint):
                warnings.simplefilter("ignore")
                result = mteb.evaluate(
                    adapter,
                    build_task(spec, data_dir),
                    cache=None,
                    overwrite_strategy="always",
                    show_progress_bar=False,
                    encode_kwargs={"batch_size": batch_size, "show_progress_bar": False},
                ).task_results[0]
            seconds = time.perf_counter() - task_started
            write_task_result(folder, result)
            record["tasks"][spec.name] = {
                "dataset_repo": spec.repo,
                "dataset_revision": spec.revision,
                "data_dir": str(data_dir) if data_dir else None,
                "data_fingerprint": fingerprint,
                "instruction": chosen_instruction,
                "instruction_used": adapter.instructions_used.get(spec.name),
                "seconds": round(seconds, 3),
                "texts_encoded": encoder.stats.texts - texts_before,
                "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            }
            record.update(_run_header(encoder, chosen_instruction, batch_size))
            atomic_write_json(folder / RUN_RECORD, record)
            summary.outcomes.append(TaskOutcome(spec, "ran", score(result, spec.metric), seconds, path, result))
            progress.finish_task()
    summary.seconds = time.perf_counter() - started
    return summary


def _run_header(encoder: Any, instruction: str | None, batch_size: int) -> dict[str, Any]:
    return {
        "model": encoder.source.name,
        "model_path": encoder.source.path,
        "revision": encoder.source.revision,
        "pooling": encoder.pooling,
        "normalize": encoder.normalize,
        "max_length": encoder.max_length,
        "precision": encoder.precision,
        "device": encoder.device,
        "batch_size": batch_size,
        "instruction": instruction,
        "python": platform.python_version(),
        "packages": _package_versions(),
    }
