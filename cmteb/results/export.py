"""`cmteb export`: one run's results laid out as the public MTEB results repository takes them.

embeddings-benchmark/results holds `results/<org>__<name>/<revision>/` per model: mteb TaskResult files,
`model_meta.json` and `run_settings.jsonl`, the revision being the 40-hex hub commit of the evaluated weights.
Everything is written by mteb itself (`ResultCache.save_to_cache`), so the files are exactly what an mteb run
writes: no cmteb keys, no items or run record beside them. Only a run cmteb can vouch for is exported: one
with an intact run record, on the C-MTEB data (not the bundled samples), at the model's default settings, of
an mteb task as mteb defines it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cmteb.errors import CmtebError
from cmteb.results.files import RESULTS_SUBDIR, model_dir_name, read_run_record
from cmteb.results.meta import folder_model_meta
from cmteb.results.reader import EXTERNAL, UNVERIFIED, ModelResults, collect_results

#: What the results repository names a revision folder: a hub commit.
COMMIT = re.compile(r"[0-9a-f]{40}")
RUN_SETTINGS = "run_settings.jsonl"


@dataclass(frozen=True)
class ExportPlan:
    """What an export writes: the model's name and commit, its mteb task files, and the tasks left out."""

    results: ModelResults
    name: str
    revision: str
    files: dict[str, Path]  # task name (as mteb names it) -> result file
    left_out: dict[str, str] = field(default_factory=dict)  # task -> why it is not exported


def plan_export(path: Path, *, revision: str | None = None, model: str | None = None) -> ExportPlan:
    """Check the results under `path` can be exported (one line naming what stops it) and list what goes."""
    results = _one_folder(Path(path))
    _refuse_unvouched(results)
    name, commit = _identity(results, revision, model)
    files, left_out = {}, {}
    for task, parsed in sorted(results.tasks.items()):
        why = _not_mtebs(results, task, parsed.dataset_revision)
        if why:
            left_out[task] = why
        else:
            files[parsed.task_name] = parsed.path
    if not files:
        raise CmtebError(f"{results.folder} holds no task as mteb defines it ({_listed(left_out)}): nothing to export")
    return ExportPlan(results, name, commit, files, left_out)


def _one_folder(path: Path) -> ModelResults:
    found = collect_results([path])
    if len(found) != 1:
        folders = ", ".join(str(r.folder) for r in found) or "none"
        raise CmtebError(f"{path} must hold the results of one model run (found: {folders}): pass its folder")
    return found[0]


def _refuse_unvouched(results: ModelResults) -> None:
    """Refuse results nothing vouches for, or that are not C-MTEB at the model's own settings."""
    where = results.folder
    if results.verification == UNVERIFIED:
        raise CmtebError(f"{where} has no intact run record, so nothing vouches for its scores: rerun, then export")
    if results.verification == EXTERNAL:
        raise CmtebError(f"{where} holds another tool's results (no cmteb run record): submit them as that tool wrote")
    if results.data == "samples":
        raise CmtebError(
            f"{where} was measured on the bundled sample data, not C-MTEB: export a run on the hub data "
            "(or a --data-dir mirror of it)"
        )
    if results.variant:
        raise CmtebError(
            f"{where} is a run of non-default settings ({results.settings_text}): the results repository takes a "
            "model's default evaluation; rerun without them to export"
        )
    if "+" in results.model:
        raise CmtebError(f"{where} holds two-stage results ({results.model}): the results repository takes one model")


def _identity(results: ModelResults, revision: str | None, model: str | None) -> tuple[str, str]:
    """The hub id and commit the export is filed under."""
    from cmteb.models.sources import check_hub_id

    local = results.model.startswith("local/")
    if local and (model is None or revision is None):
        raise CmtebError(
            f"{results.model} was run from a local folder: pass --model ORG/NAME (its hub id) and --revision "
            "(the 40-hex hub commit of the weights evaluated)"
        )
    name, commit = model or results.model, revision or results.revision or ""
    check_hub_id(name, "--model")
    if not COMMIT.fullmatch(commit):
        raise CmtebError(
            f"revision {commit!r} of {name} is not a 40-hex hub commit: pass --revision with the commit of the "
            "weights evaluated (the results repository names folders by it)"
        )
    return name, commit


def _not_mtebs(results: ModelResults, task: str, dataset_revision: str | None) -> str | None:
    """Why `task`'s result is not mteb's task as mteb defines it, or None."""
    import mteb

    spec = results.resolved.specs().get(task)
    ran = spec.run_as or spec.name if spec is not None else task
    try:
        defined = mteb.get_task(ran).metadata.dataset["revision"]
    except KeyError:
        return "not an mteb task"
    if spec is not None and (spec.loader or spec.qrels_repo):
        return f"read from {spec.repo} in its 2023 layout, not mteb's definition"
    if dataset_revision != defined:
        return f"dataset revision {dataset_revision}, not mteb's {defined}"
    return None


def _listed(left_out: dict[str, str]) -> str:
    return "; ".join(f"{task}: {why}" for task, why in left_out.items())


def write_export(plan: ExportPlan, out: Path) -> Path:
    """Write the export under `out/results/`, all at once (a staging folder renamed into place); an existing
    folder of that model and commit is never overwritten."""
    from mteb.cache import ResultCache
    from mteb.results import TaskResult

    target = Path(out) / RESULTS_SUBDIR / model_dir_name(plan.name) / plan.revision
    if target.exists():
        raise CmtebError(f"{target} exists: remove it, or export into another --out")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{plan.revision}."))
    try:
        cache, meta = ResultCache(cache_path=staging), _model_meta(plan)
        record = read_run_record(plan.results.folder)
        for path in plan.files.values():
            cache.save_to_cache(TaskResult.from_disk(path), meta, encode_kwargs=_encode_kwargs(record))
        written = staging / RESULTS_SUBDIR / model_dir_name(plan.name) / plan.revision
        _record_versions(written / RUN_SETTINGS, record.get("packages", {}))
        os.replace(written, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _model_meta(plan: ExportPlan) -> Any:
    """mteb's registry entry for the model, else what the run measured (its model_meta.json)."""
    from mteb.models.model_meta import ModelMeta

    measured = json.loads((plan.results.folder / "model_meta.json").read_text(encoding="utf-8"))
    measured = {k: v for k, v in measured.items() if k in ModelMeta.model_fields}
    base = ModelMeta.model_validate(measured)
    return folder_model_meta(base, name=plan.name, revision=plan.revision, variant={})


def _encode_kwargs(record: dict[str, Any]) -> dict[str, Any]:
    """What the run passed to its encoder, as mteb records encode_kwargs: the batch size."""
    sizes = {entry.get("settings", {}).get("batch_size") for entry in record["tasks"].values()}
    sizes.discard(None)
    return {"batch_size": sizes.pop()} if len(sizes) == 1 else {}


def _record_versions(path: Path, packages: dict[str, str]) -> None:
    """run_settings.jsonl names the package versions of the environment that writes it: put the evaluating
    run's versions (from its run record) in their place."""
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for entry in lines:
        entry["version"] = {name: packages.get(name, found) for name, found in entry.get("version", {}).items()}
    path.write_text("".join(json.dumps(entry) + "\n" for entry in lines), encoding="utf-8")
