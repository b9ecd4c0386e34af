"""Published reference rows (`cmteb/data/reference/`): numbers from public sources, with their source
and the protocol they were produced under. Never mixed with measured rows.

- `*.yaml`: tables copied from the seed READMEs and c-mteb's README (category or per-task values).
  A file whose numbers come from another setting than the protocol's own tables says so in
  `setting`; the leaderboard gives each setting a table of its own.
- `*-results.json`: verbatim copies of published result files (mteb 1 JSON per task and model),
  with their source and commit; their task scores are computed by the protocol's rules, as a
  measured row's would be.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from cmteb.assets import REFERENCE_DIR
from cmteb.errors import CmtebError
from cmteb.io import read_yaml
from cmteb.report.averages import task_points
from cmteb.results.reader import parse_result_data
from cmteb.tasks.protocols import known_tasks, resolve_protocol, task_aliases


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
    setting: str = ""  # where the source's setting differs from the protocol's own tables


def _table_rows(path: Path) -> list[PublishedRow]:
    data = read_yaml(path)
    rows = []
    for entry in data["rows"]:
        row = PublishedRow(
            entry["model"],
            data["source"],
            data["protocol"],
            entry.get("embedding_dim"),
            setting=data.get("setting", ""),
        )
        values = {c: float(entry[c]) for c in data["columns"] if c in entry}
        if data["kind"] == "categories":
            row.categories = values
        else:
            row.task_type = data["type"]
            row.categories = {data["type"]: values.pop("Avg")} if "Avg" in values else {}
            row.tasks = values
        rows.append(row)
    return rows


def _result_file_rows(path: Path) -> list[PublishedRow]:
    """One per-task row per model of a copy of published result files."""
    data = json.loads(path.read_text(encoding="utf-8"))
    protocol = resolve_protocol(data["protocol"])
    aliases = task_aliases()
    types = {alias: known_tasks()[name].type for alias, name in aliases.items()}
    source = f"{data['source']} at commit {data['commit'][:9]}, {data['folder']}"
    rows = []
    for model, files in data["models"].items():
        row = PublishedRow(model, source, protocol.name)
        for file_name, content in files.items():
            parsed = parse_result_data(content, path / model / file_name, types)
            name = aliases.get(parsed.task_name)
            if name is None or name not in protocol.specs():
                raise CmtebError(f"reference file {path}: {model}/{file_name} is no task of protocol {protocol.name}")
            value = task_points(protocol, protocol.task_score(protocol.get(name), parsed.splits))
            if value is None:
                raise CmtebError(
                    f"reference file {path}: {model}/{file_name} lacks the metric {protocol.get(name).metric}"
                )
            row.tasks[name] = value
        rows.append(row)
    return rows


def load_reference(folder: Path = REFERENCE_DIR) -> list[PublishedRow]:
    """All published rows, file by file in name order, rows in their published order."""
    rows: list[PublishedRow] = []
    for path in sorted([*Path(folder).glob("*.yaml"), *Path(folder).glob("*-results.json")]):
        try:
            rows += _table_rows(path) if path.suffix == ".yaml" else _result_file_rows(path)
        except (KeyError, TypeError, ValueError, yaml.YAMLError) as exc:
            raise CmtebError(f"reference file {path} is malformed ({exc}): fix it") from exc
    return rows
