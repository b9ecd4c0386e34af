"""`cmteb run` with one speed lever switched off, for `bench/levers.py`'s before/after figures.

Usage: python bench/lever_off.py LEVER -- <cmteb run arguments>

LEVER is a key of `tests/levers.py`'s LEVERS (its docstring says what each switches off), or `none`.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from levers import LEVERS


def main(argv: list[str]) -> int:
    lever, separator, *args = argv
    if lever not in LEVERS or separator != "--":
        sys.exit(f"usage: lever_off.py {{{'|'.join(LEVERS)}}} -- <cmteb run arguments>")
    LEVERS[lever]()
    from cmteb.cli import main as cmteb_main

    return cmteb_main(["run", *args])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
