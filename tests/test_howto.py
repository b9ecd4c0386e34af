"""The two how-to pages followed literally: each code block is applied, as the page says, to a copy of the
package, and the commands the page gives are run on it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from model_builders import build_tiny_bert

ROOT = Path(__file__).resolve().parent.parent


def blocks(page: str, language: str) -> list[str]:
    """The fenced code blocks of a docs page in `language`."""
    text = (ROOT / "docs" / page).read_text(encoding="utf-8")
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


def package_copy(tmp_path: Path) -> Path:
    """A copy of the cmteb package to edit; its folder goes first on PYTHONPATH."""
    shutil.copytree(ROOT / "cmteb", tmp_path / "src" / "cmteb", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path / "src"


def append_to_tuple(path: Path, opening: str, entry: str) -> None:
    """Put `entry` after the last entry of the tuple that `opening` starts, as the pages say."""
    text = path.read_text(encoding="utf-8")
    start = text.index(opening) + opening.rindex("(")
    depth = 0
    for end in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[end], 0)
        if depth == 0:
            break
    last_line = text.rindex("\n", 0, end) + 1  # the tuple's closing line: the entry goes before it
    path.write_text(text[:last_line] + entry + text[last_line:], encoding="utf-8")


def cmteb(src: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(src), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "cmteb.cli", *args], env=env, capture_output=True, text=True)


def test_adding_a_task_type_as_the_page_says(tiny_bert, tmp_path):
    src = package_copy(tmp_path)
    [entry] = blocks("adding-a-task-type.md", "python")
    [protocol] = blocks("adding-a-task-type.md", "yaml")
    [command] = blocks("adding-a-task-type.md", "bash")
    types = src / "cmteb" / "tasks" / "types.py"
    append_to_tuple(types, "    for t in (\n", entry)
    protocols = src / "cmteb" / "data" / "protocols.yaml"
    protocols.write_text(protocols.read_text(encoding="utf-8").rstrip("\n") + "\n" + protocol, encoding="utf-8")
    args = command.split()[1:]  # `.venv/bin/cmteb run ...`, with this test's tiny model and output folder
    args[args.index("m3e-small")] = str(tiny_bert)
    args[args.index("cmteb/data/samples")] = str(src / "cmteb" / "data" / "samples")
    done = cmteb(src, *args, "--output-dir", str(tmp_path / "out"), "--no-progress")
    assert done.returncode == 0, done.stderr[-3000:]
    assert re.search(r"mean +NLI +2 tasks", done.stdout), done.stdout
    board = cmteb(src, "leaderboard", "--results", str(tmp_path / "out"), "--out", str(tmp_path / "board"))
    assert board.returncode == 0, board.stderr[-3000:]
    header = next(line for line in board.stdout.splitlines() if line.startswith("| Model"))
    columns = [c.strip() for c in header.strip("|").split("|")]
    assert columns.index("NLI") == columns.index("Clustering") + 1, "the new category after the six"
    assert "PairClassification" not in columns, "its two tasks moved to NLI"


def test_adding_a_model_family_as_the_page_says(tmp_path, samples_dir):
    src = package_copy(tmp_path)
    [entry] = blocks("adding-a-model-family.md", "python")
    [commands] = blocks("adding-a-model-family.md", "bash")
    append_to_tuple(src / "cmteb" / "models" / "families.py", "FAMILIES: tuple[Family, ...] = (", entry)
    listed = cmteb(src, *commands.splitlines()[0].split()[1:])
    assert listed.returncode == 0 and "acme-zh" in listed.stdout, listed.stderr
    model = build_tiny_bert(tmp_path / "zh-embedder-small")  # no sentence-transformers files: the family decides
    args = commands.splitlines()[1].split()[1:]
    args[args.index("path/to/zh-embedder-small")] = str(model)
    args[args.index("cmteb/data/samples")] = str(samples_dir)
    done = cmteb(src, *args, "--output-dir", str(tmp_path / "out"), "--no-progress")
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads(next((tmp_path / "out").rglob("run.json")).read_text())
    recipe = record["model_recipe"]
    assert (recipe["family"], recipe["pooling"], recipe["normalize"]) == ("acme-zh", "cls", True)
    used = json.dumps(record["tasks"]["T2Retrieval"]["instructions_used"], ensure_ascii=False)
    assert "为这个句子生成表示以用于检索相关文章：" in used, "the BGE Chinese query instruction"
