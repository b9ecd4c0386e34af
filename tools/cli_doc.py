"""Write docs/cli.md, every option of every `cmteb` command, from the parsers themselves.

`python -m tools.cli_doc` rewrites the page; `tests/test_docs.py` fails when the page and the parsers differ,
so an option added without its line in the reference is caught. argparse has no public API for listing a
parser's actions, so this reads `_actions` and the subparsers action's `choices` (stable since Python 3.2).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cmteb.cli.parsers import build_parser

PAGE = Path(__file__).resolve().parent.parent / "docs" / "cli.md"

INTRO = """# Command reference

Every option of every command, generated from the parsers (`python -m tools.cli_doc`; a test checks it is
current). `cmteb COMMAND --help` prints the same. `--debug` is accepted before or after the command and
shows tracebacks and library logs.
"""


def _option_cell(action: argparse.Action) -> str:
    names = ", ".join(f"`{name}`" for name in action.option_strings) or f"`{action.dest}`"
    if action.nargs == 0:
        return names
    metavar = action.metavar or (action.dest.upper() if action.option_strings else None)
    if isinstance(metavar, tuple):
        metavar = " ".join(metavar)
    shown = f" {metavar}" if metavar and action.option_strings else ""
    if action.nargs in ("+", "*"):
        shown += " ..."
    elif action.nargs == "?":
        shown = f" [{metavar}]"
    return names + shown


def _help_cell(action: argparse.Action) -> str:
    text = " ".join((action.help or "").split()).replace("|", "\\|")
    text = text.replace("%(default)s", str(action.default)).replace("%%", "%")
    if action.choices and not isinstance(action, argparse._SubParsersAction):
        text += " (one of: " + ", ".join(f"`{choice}`" for choice in action.choices) + ")"
    return text


def _command_section(name: str, parser: argparse.ArgumentParser) -> list[str]:
    lines = [f"## `cmteb {name}`", "", (parser.description or "").strip(), ""]
    lines += ["| option | what it does |", "|---|---|"]
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction) or action.dest == "debug":
            continue
        lines.append(f"| {_option_cell(action)} | {_help_cell(action)} |")
    return [*lines, ""]


def render() -> str:
    """The page: the intro, then one section per command with a row per option."""
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    summaries = {choice.dest: choice.help for choice in commands._choices_actions}
    lines = [INTRO]
    for name, sub in commands.choices.items():
        sub.description = sub.description or summaries.get(name, "")
        lines += _command_section(name, sub)
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    """Rewrite docs/cli.md, or with --check exit 1 when it is out of date."""
    page = render()
    if "--check" in sys.argv[1:]:
        return 0 if PAGE.read_text(encoding="utf-8") == page else 1
    PAGE.write_text(page, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
