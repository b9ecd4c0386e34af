"""Published reference rows (`results/reference/*.yaml`): numbers copied from the seed tables,
with their source and the protocol they were produced under. Never mixed with measured rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from cmteb.assets import PROJECT_ROOT
from cmteb.errors import CmtebError

REFERENCE_DIR = PROJECT_ROOT / "results" / "reference"


@dataclass
class PublishedRow:
    """One published model row: category scores and/or task scores, in points."""

    model: str
    source: str
    protocol: str
    embedding_dim: int | None = None
    categories: dict[str, float] = field(default_factory=dict)  # includes "Avg" when published
    tasks: dict[str, float] = field(default_factory=dict)
    task_type: str | None = None  # for per-task tables: the category their Avg belongs to


def load_reference(folder: Path = REFERENCE_DIR) -> list[PublishedRow]:
    """All published rows, file by file in name order, rows in their published order."""
    rows: list[PublishedRow] = []
    for path in sorted(Path(folder).glob("*.yaml")):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            for entry in data["rows"]:
                row = PublishedRow(entry["model"], data["source"], data["protocol"], entry.get("embedding_dim"))
                values = {c: float(entry[c]) for c in data["columns"] if c in entry}
                if data["kind"] == "categories":
                    row.categories = values
                else:
                    row.task_type = data["type"]
                    row.categories = {data["type"]: values.pop("Avg")} if "Avg" in values else {}
                    row.tasks = values
                rows.append(row)
        except (KeyError, TypeError, ValueError, yaml.YAMLError) as exc:
            raise CmtebError(f"reference file {path} is malformed ({exc}): fix it") from exc
    return rows
