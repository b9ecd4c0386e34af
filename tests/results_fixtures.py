"""Hand-made result folders for the leaderboard and model-card tests (numbers chosen by hand)."""

from __future__ import annotations

import json
from pathlib import Path

from cmteb.registry import load_registry


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
    """Write `<root>/<org>__<name>/<revision>/` with one mteb 2 result per task in `scores`."""
    folder = root / model.replace("/", "__") / revision
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model_meta.json").write_text(json.dumps({"name": model, "revision": revision, "embed_dim": dim}))
    registry = load_registry()
    for task, metrics in scores.items():
        splits = {s: metrics for s in registry.get(task).splits}
        (folder / f"{task}.json").write_text(json.dumps(mteb2_result(task, splits)))
    return folder
