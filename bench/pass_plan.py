"""The forward passes of every task at its real size under cmteb's batch plan, filled and unfilled, and the
GPU seconds a per-pass cost model gives for each: an estimate for a GPU session to check, not a timing.

Text lengths are drawn as `bench/full_mirror.py` draws them (mteb's `descriptive_stats`, gamma-shaped),
one token per character plus [CLS] and [SEP] (the mirror's text is Chinese review text, which the
bert-base-chinese vocabulary splits into single characters), truncated at 512. Texts shared between
tasks are counted in each. The cost model is a fixed cost per pass plus a cost per padded token, fitted
to two figures of a bge-large-shaped encoder in fp16 on one H200 (README, Speed): 256 texts of 38 tokens
at 0.23 of the matmul rate, 256 of 512 tokens at 0.51 (`--fixed-ms`, `--token-us` to change it).

Run: `python bench/pass_plan.py [--batch-size 256] [--tasks T ...]`.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from figures import fill_rows  # noqa: E402
from full_mirror import Texts  # noqa: E402

from cmteb.defaults import DEFAULT_MAX_LENGTH  # noqa: E402
from cmteb.models import plan  # noqa: E402
from cmteb.tasks.protocols import resolve_protocol  # noqa: E402

COUNT_OF = {"documents_text_statistics": "num_documents", "queries_text_statistics": "num_queries"}


def task_lengths(name: str) -> np.ndarray:
    """Token lengths of the texts one evaluation split of `name` encodes (empty without statistics)."""
    import mteb

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        all_stats = mteb.get_task(name).metadata.descriptive_stats or {}
    split = next((s for s in ("test", "dev", "validation") if s in all_stats), None)
    if split is None:
        return np.array([], dtype=int)
    texts, stats, drawn = Texts(name), all_stats[split], []
    for key, column in stats.items():
        if key.endswith("_statistics") and isinstance(column, dict) and "average_text_length" in column:
            count = int(stats.get(COUNT_OF.get(key, ""), None) or stats.get("num_samples") or 0)
            drawn.append(np.minimum(texts.lengths(count, column) + 2, DEFAULT_MAX_LENGTH))
    return np.concatenate(drawn) if drawn else np.array([], dtype=int)


def passes(lengths: np.ndarray, batch_size: int, fill: bool) -> tuple[int, int]:
    """The number of passes and padded tokens of cmteb's plan on a GPU (budget: the batch's longest case)."""
    with fill_rows(fill):
        batches = plan.plan_batches(lengths, batch_size, batch_size * DEFAULT_MAX_LENGTH)
    return len(batches), sum(len(b) * int(lengths[b].max()) for b in batches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--tasks", nargs="+", help="default: every task of the default protocol")
    parser.add_argument("--fixed-ms", type=float, default=19.8, help="cost of a pass beyond its tokens, ms")
    parser.add_argument("--token-us", type=float, default=1.398, help="cost of a padded token, microseconds")
    args = parser.parse_args()
    protocol = resolve_protocol(None)  # the tasks `bench/full_mirror.py` builds
    names = [s.name for s in protocol.select(args.tasks, None) if not protocol.is_extra(s.name)]
    cost = np.array([args.fixed_ms / 1e3, args.token_us / 1e6])
    totals = np.zeros(4)
    print(f"{'task':26}{'texts':>10}{'mean tokens':>13}{'passes':>16}{'est. GPU s':>18}")
    for name in names:
        lengths = task_lengths(name)
        if not len(lengths):
            print(f"{name:26}  no descriptive statistics in mteb: left out")
            continue
        fixed, filled = passes(lengths, args.batch_size, False), passes(lengths, args.batch_size, True)
        seconds = [float(np.dot(cost, fixed)), float(np.dot(cost, filled))]
        totals += [fixed[0], filled[0], *seconds]
        row = f"{fixed[0]:>7,} -> {filled[0]:>5,}{seconds[0]:>9.1f} -> {seconds[1]:>6.1f}"
        print(f"{name:26}{len(lengths):>10,}{lengths.mean():>13.0f}{row}")
    print(f"{'all':49}{totals[0]:>7,.0f} -> {totals[1]:>5,.0f}{totals[2]:>9.1f} -> {totals[3]:>6.1f}")


if __name__ == "__main__":
    main()
