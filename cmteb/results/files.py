"""Result files: mteb's `TaskResult` JSON in mteb's folder layout, plus cmteb's run record.

Layout: `<output>/results/<org>__<name>/<revision>/<Task>.json` and `model_meta.json`, the layout of
mteb's own cache (so `mteb.cache.ResultCache(cache_path=<output>).load_results()` reads every task
result), and, in the `cmteb/` folder beside them where mteb does not look for results, the run
record `run.json` with what mteb does not keep: precision, device, package versions, seconds and
texts per task, the instruction used, and the dataset revision and data fingerprint that resume
keys on.
Every file is written atomically: a temp file in the same folder, then a rename.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cmteb.errors import CmtebError
from cmteb.io import atomic_write_json, sha256_file
from cmteb.mteb_hooks import task_result_json
from cmteb.results.run_record import RunRecord

if TYPE_CHECKING:  # mteb is heavy to import; commands that only read results never need it
    from mteb.results import TaskResult

#: The run record, relative to a result folder: mteb loads every `*.json` beside the task results.
RUN_RECORD = "cmteb/run.json"
#: A run-record entry's mark while its task's files are being rewritten; a finished write replaces the entry.
REWRITING = "rewriting_since"
#: Where results written before that kept the run record (read, never written).
LEGACY_RUN_RECORD = "cmteb_run.json"
#: mteb's cache layout: results live under this folder of the output folder.
RESULTS_SUBDIR = "results"
MODEL_META = "model_meta.json"
NO_REVISION = "no_revision_available"
#: The run-record and store field listing a task's files with their sha256, as written.
CHECKSUMS = "checksums"


def package_versions(packages: tuple[str, ...]) -> dict[str, str]:
    """Installed versions of `packages` (missing ones left out)."""
    from importlib import metadata

    found = {}
    for package in packages:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return found


def settings_text(variant: dict[str, Any]) -> str:
    """A run's non-default settings in words ("pooling cls, max length 64"), or ""."""
    return ", ".join(f"{key.replace('_', ' ')} {value}" for key, value in variant.items())


def model_dir_name(model_name: str) -> str:
    """mteb's folder name for a model: `org/name` becomes `org__name`."""
    return model_name.replace("/", "__").replace(" ", "_")


def result_dir(output_dir: Path, model_name: str, revision: str | None) -> Path:
    """`<output>/results/<org>__<name>/<revision>`, as mteb's ResultCache lays results out. Names are checked
    where they are given (`models/loading.py`); this is the last guard: a folder outside the output folder is
    an error, never a write."""
    results = Path(output_dir) / RESULTS_SUBDIR
    folder = results / model_dir_name(model_name) / (revision or NO_REVISION)
    inside = folder.resolve().is_relative_to(results.resolve()) and len(folder.relative_to(results).parts) == 2
    if not inside or {".", ".."} & set(folder.relative_to(results).parts):
        raise CmtebError(f"model name {model_name!r} with revision {revision!r} would write outside {results}")
    return folder


#: The key of cmteb's provenance block inside a result file. mteb's TaskResult ignores keys it
#: does not know, so the file still loads with mteb and stays submittable.
PROVENANCE_KEY = "cmteb"


def write_task_result(folder: Path, result: TaskResult, provenance: dict[str, Any] | None = None) -> Path:
    """Write `<folder>/<Task>.json` atomically, with cmteb's `provenance` (protocol, instruction...)."""
    path = Path(folder) / f"{result.task_name}.json"
    data = task_result_json(result)
    if provenance:
        data[PROVENANCE_KEY] = provenance
    atomic_write_json(path, data)
    return path


def read_task_result(path: Path) -> TaskResult:
    """Load a result file with mteb (it also reads mteb 1 shaped files)."""
    from mteb.results import TaskResult

    return TaskResult.from_disk(Path(path))


def read_run_record(folder: Path) -> RunRecord:
    """The run record of a result folder, or an empty record."""
    path = Path(folder) / RUN_RECORD
    if not path.is_file():
        path = Path(folder) / LEGACY_RUN_RECORD
    if not path.is_file():
        return {"tasks": {}}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return {"tasks": {}, "damaged": str(path)}
    if not isinstance(data, dict) or not isinstance(data.get("tasks", {}), dict):
        return {"tasks": {}, "damaged": str(path)}
    data.setdefault("tasks", {})
    return data  # type: ignore[no-any-return]


def file_checksums(paths: list[Path]) -> dict[str, str]:
    """`{file name: sha256}` of the files of one task result, recorded when they are written."""
    return {Path(p).name: sha256_file(p) for p in paths if Path(p).is_file()}


def checksum_problem(folder: Path, checksums: dict[str, str]) -> str | None:
    """What differs from `checksums` among the files in `folder` (missing or changed), or None."""
    for name, digest in checksums.items():
        path = Path(folder) / name
        if not path.is_file():
            return f"{name} is missing"
        if sha256_file(path) != digest:
            return f"{name} changed after it was written"
    return None
