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


def module_counts(mutants: Path) -> dict[str, Counter]:
    """Per mutated module, how many of its mutants ended in each mutmut status."""
    counts: dict[str, Counter] = {}
    for meta in sorted(mutants.rglob("*.py.meta")):
        module = str(meta.relative_to(mutants)).removesuffix(".meta")
        exit_codes = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
        counts[module] = Counter(status_by_exit_code[code] for code in exit_codes.values())
    return counts


def survivors(mutants: Path) -> list[str]:
    """The names of the mutants no test caught (`mutmut show NAME` prints each one's change)."""
    names = []
    for meta in sorted(mutants.rglob("*.py.meta")):
        exit_codes = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
        names += [name for name, code in exit_codes.items() if status_by_exit_code[code] in ("survived", "no tests")]
    return names


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
    print(score_table(module_counts(args.mutants)))
    if args.survivors:
        print("\n".join(survivors(args.mutants)))


if __name__ == "__main__":
    main()
