"""Per-module mutation scores of the last `mutmut run` (`make mutate` prints them).

mutmut lists mutants one by one (`mutmut results`); the score the project tracks is per module: caught
(killed, timeout, caught by the type check) over checked. Statuses are mutmut's own (`status_by_exit_code`).

    python -m tools.mutation_scores [--survivors]
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from mutmut.stats import status_by_exit_code

CAUGHT = ("killed", "timeout", "caught by type check")


def read_exit_codes(mutants: Path) -> dict[str, dict[str, int | None]]:
    """Per mutated module, each mutant's exit code as the last run left it (mutmut's `.meta` files)."""
    codes = {}
    for meta in sorted(mutants.rglob("*.py.meta")):
        module = str(meta.relative_to(mutants)).removesuffix(".meta")
        codes[module] = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
    return codes


def module_counts(exit_codes: dict[str, dict[str, int | None]]) -> dict[str, Counter]:
    """Per mutated module, how many of its mutants ended in each mutmut status."""
    return {module: Counter(status_by_exit_code[c] for c in codes.values()) for module, codes in exit_codes.items()}


def survivors(exit_codes: dict[str, dict[str, int | None]]) -> list[str]:
    """The names of the mutants no test caught (`mutmut show NAME` prints each one's change)."""
    return [
        name
        for codes in exit_codes.values()
        for name, code in codes.items()
        if status_by_exit_code[code] in ("survived", "no tests")
    ]


def score_table(counts: dict[str, Counter]) -> str:
    """A Markdown table: per module, its mutants by status and the share of the checked ones caught."""
    lines = ["| module | mutants | checked | killed | timeout | survived | no tests | caught |", "|:--|" + "--:|" * 7]
    for module, c in counts.items():
        checked = sum(c.values()) - c["not checked"]
        caught = sum(c[s] for s in CAUGHT)
        share = f"{100 * caught / checked:.1f} %" if checked else "—"
        lines.append(
            f"| {module} | {sum(c.values())} | {checked} | {c['killed']} | {c['timeout']} | {c['survived']} | "
            f"{c['no tests']} | {share} |"
        )
    return "\n".join(lines)


def main() -> None:
    """Print the table (and with --survivors, the surviving mutants' names)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mutants", type=Path, default=Path("mutants"), help="mutmut's working folder")
    parser.add_argument("--survivors", action="store_true", help="also list the mutants no test caught")
    args = parser.parse_args()
    if not args.mutants.is_dir():
        raise SystemExit(f"no {args.mutants} folder: run `make mutate` first")
    exit_codes = read_exit_codes(args.mutants)
    print(score_table(module_counts(exit_codes)))
    if args.survivors:
        print("\n".join(survivors(exit_codes)))


if __name__ == "__main__":
    main()
