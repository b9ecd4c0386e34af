"""Write a dataset repo in the Hugging Face hub layout: parquet files per config and split plus a
README whose `configs:` block tells `datasets` how to read them, as `push_to_hub` writes it."""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from datasets import Dataset

Rows = Sequence[Mapping[str, Any]]


def config_folder(config: str) -> str:
    """The folder `push_to_hub` uses for a config: `data/` for the default one, else its name."""
    return "data" if config == "default" else config


def write_hub_repo(repo_dir: Path, configs: Mapping[str, Mapping[str, Rows]], *, card: str = "") -> None:
    """Write `configs` ({config: {split: rows}}) under `repo_dir`, replacing what was there."""
    repo_dir = Path(repo_dir)
    if repo_dir.exists():
        shutil.rmtree(repo_dir)
    entries = []
    for config, splits in configs.items():
        folder = config_folder(config)
        files = []
        for split, rows in splits.items():
            target = repo_dir / folder / f"{split}-00000-of-00001.parquet"
            target.parent.mkdir(parents=True, exist_ok=True)
            Dataset.from_list(list(rows)).to_parquet(str(target))
            files.append({"split": split, "path": f"{folder}/{split}-*"})
        entries.append({"config_name": config, "data_files": files})
    front = yaml.safe_dump({"configs": entries}, allow_unicode=True, sort_keys=False)
    (repo_dir / "README.md").write_text(f"---\n{front}---\n{card}", encoding="utf-8")
