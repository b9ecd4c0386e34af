"""The documentation a newcomer reads: short enough, every link resolving, the CLI reference complete."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cmteb.cli.parsers import build_parser

ROOT = Path(__file__).resolve().parent.parent
TOP_PAGES = ("README.md", "ARCHITECTURE.md", "bench/README.md", "results/README.md")
PAGES = sorted([*(ROOT / page for page in TOP_PAGES), *(ROOT / "docs").glob("*.md")])
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
# argparse has no public list of a parser's subcommands: the subparsers action holds them.
COMMANDS = list(next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices)


def test_the_readme_is_a_first_five_minutes_read():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 300, f"README.md has {len(lines)} lines; reference belongs in docs/"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path):
    broken = []
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        if not (page.parent / target.split("#")[0]).exists():
            broken.append(target)
    assert broken == [], f"{page.relative_to(ROOT)} links to missing files: {broken}"


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_of_every_command_is_in_the_cli_reference(command: str):
    help_text = subprocess.run(
        [sys.executable, "-m", "cmteb.cli", command, "--help"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "1000"},  # one option per line, none cut at a hyphen
    ).stdout
    options = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]+)", help_text)) - {"--help", "--debug"}
    section = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8").split(f"## `cmteb {command}`")[1]
    section = section.split("\n## ")[0]
    missing = sorted(option for option in options if f"`{option}`" not in section)
    assert missing == [], f"docs/cli.md lacks options of cmteb {command}: {missing} (python -m tools.cli_doc)"


def test_the_cli_reference_is_what_the_parsers_generate():
    from tools.cli_doc import PAGE, render

    assert PAGE.read_text(encoding="utf-8") == render(), "docs/cli.md is stale: run python -m tools.cli_doc"
