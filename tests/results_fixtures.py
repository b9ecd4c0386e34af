"""Hand-made result folders for the leaderboard and model-card tests (numbers chosen by hand)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from cmteb.tasks.registry import load_registry

#: The columns of a reranking table, tasks in the order of the seed README's reranking table.
RERANKING_COLUMNS = [
    "Model",
    "Source",
    "Protocol",
    "T2Reranking",
    "T2RerankingZh2En",
    "T2RerankingEn2Zh",
    "MMarcoReranking",
    "CMedQAv1-reranking",
    "CMedQAv2-reranking",
    "Avg",
]


def mteb2_result(task: str, split_scores: dict[str, dict[str, float]], revision: str | None = None) -> dict:
    """A result in mteb 2's TaskResult JSON shape."""
    spec = load_registry().get(task)
    return {
        "dataset_revision": revision or spec.revision,
        "task_name": task,
        "mteb_version": "2.26.24",
        "scores": {
            split: [
                {**scores, "main_score": next(iter(scores.values())), "hf_subset": "default", "languages": ["cmn-Hans"]}
            ]
            for split, scores in split_scores.items()
        },
        "evaluation_time": 1.0,
        "kg_co2_emissions": None,
    }


def write_model(root: Path, model: str, revision: str, scores: dict[str, dict[str, float]], dim: int = 512) -> Path:
    """Write `<root>/<org>__<name>/<revision>/` with one mteb 2 result per task in `scores`: a task's metrics, or
    per split its metrics (`{"validation": {...}, "test": {...}}`)."""
    folder = root / model.replace("/", "__") / revision
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model_meta.json").write_text(json.dumps({"name": model, "revision": revision, "embed_dim": dim}))
    registry = load_registry()
    for task, metrics in scores.items():
        splits = registry.get(task).splits
        per_split = metrics if set(metrics) <= set(splits) and metrics else {s: metrics for s in splits}
        (folder / f"{task}.json").write_text(json.dumps(mteb2_result(task, per_split)))
    return folder


def write_protocol_model(
    root: Path, model: str, protocol_name: str, value: float = 0.5, data_source: str = "hub"
) -> Path:
    """A result folder as `cmteb run --protocol` writes it: every task of the protocol (extras too), each
    file named after the task mteb ran, on the protocol's splits and subsets, with the cmteb block, and the run
    record that lists each file with its checksum."""
    from cmteb.results.files import CHECKSUMS, PROVENANCE_KEY, file_checksums, result_dir
    from cmteb.tasks.protocols import resolve_protocol

    protocol = resolve_protocol(protocol_name)
    folder = result_dir(root, model, "r1")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model_meta.json").write_text(json.dumps({"name": model, "revision": "r1", "embed_dim": 512}))
    tasks: dict[str, dict] = {}
    for spec in protocol.all_tasks:
        ran = spec.run_as or spec.name
        metrics = {spec.metric: value, spec.main_score: value}
        entries = [{**metrics, "main_score": value, "hf_subset": s} for s in spec.hf_subsets or ("default",)]
        data = {
            "dataset_revision": spec.revision,
            "task_name": ran,
            "mteb_version": "2.26.24",
            "scores": {split: entries for split in spec.splits},
            "evaluation_time": 1.0,
            PROVENANCE_KEY: {"protocol": protocol.name, "dataset_repo": spec.repo, "splits": list(spec.splits)},
        }
        (folder / f"{ran}.json").write_text(json.dumps(data))
        checksums = file_checksums([folder / f"{ran}.json"])
        tasks[spec.name] = {"status": "ran", "data_source": data_source, CHECKSUMS: checksums}
    return write_run_record(folder, tasks, protocol=protocol.name)


def write_run_record(folder: Path, tasks: dict[str, dict], **header) -> Path:
    """A run record (`cmteb/run.json`) for a hand-made result folder: one entry per task, and `header`."""
    from cmteb.io import atomic_write_json
    from cmteb.results.files import RUN_RECORD

    atomic_write_json(folder / RUN_RECORD, {**header, "tasks": tasks})
    return folder


def arithmetic(**changes) -> dict:
    """An arithmetic record as a run writes it, with `changes` to its CPU block."""
    return {
        "cpu": {"model": "Some CPU", "flags": ["avx2"], "torch_capability": "AVX2", "mkl": "2024.2", **changes},
        "gpu": None,
        "packages": {"torch": "2.13.0", "transformers": "5.25.0"},
    }


def edit_run_record(folder: Path, edit: Callable[[dict], object]) -> Path:
    """Change a recorded folder's run record in place: `edit` gets the whole record, its tasks included."""
    from cmteb.results.files import RUN_RECORD

    record = json.loads((folder / RUN_RECORD).read_text(encoding="utf-8"))
    edit(record)
    return write_run_record(folder, record.pop("tasks"), **record)


def rewrite_result(folder: Path, file_name: str, data: dict) -> None:
    """Replace one result file of a recorded folder and its checksum in the run record, as a rerun would."""
    from cmteb.results.files import CHECKSUMS, file_checksums

    path = folder / file_name
    path.write_text(json.dumps(data))

    def new_checksum(record: dict) -> None:
        for entry in record["tasks"].values():
            if file_name in entry.get(CHECKSUMS, {}):
                entry[CHECKSUMS] = file_checksums([path])

    edit_run_record(folder, new_checksum)
