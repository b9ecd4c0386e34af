"""Tokenising long texts whole against from the prefix truncation keeps (`cmteb/models/speed/truncation.py`).

For each task of a synthetic mirror at its real text lengths (`full_mirror.py`), every distinct text is
tokenised by cmteb's `tokenize` twice, one after the other: with the `prefix` lever off (the whole text, then
truncated) and as shipped; prints the seconds of each, how many prefixes were tokenised again in full,
and whether the ids are identical (they must be). On 2 CPU cores, the long-passage corpora at a quarter
of their size (about 3 minutes):
    python bench/tokenize_rate.py
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from full_mirror import build
from lever_off import LEVERS  # the test suite's lever switches

from cmteb.assets import bundled_model_dir
from cmteb.models import tokenize as tokenize_module
from cmteb.models.speed.truncation import prefix_chars

LONG_TEXT_TASKS = ["T2Retrieval", "DuRetrieval", "CovidRetrieval", "CmedqaRetrieval"]


def task_texts(repo_dir: Path) -> list[str]:
    """Every distinct non-empty text (string columns other than ids) of a mirrored repo's parquet files."""
    texts: list[str] = []
    for path in sorted(repo_dir.rglob("*.parquet")):
        table = pq.read_table(path)
        for name in table.column_names:
            if pa.types.is_string(table.schema.field(name).type) and "id" not in name:  # not ids or qrels
                texts += table.column(name).to_pylist()
    return [text for text in dict.fromkeys(texts) if text]


def timed(tokenizer, texts: list[str], max_length: int) -> tuple[float, dict]:
    """Seconds of one `tokenize` call, and its ids."""
    started = time.perf_counter()
    encoded = tokenize_module.tokenize(tokenizer, texts, max_length)
    return time.perf_counter() - started, encoded


def main() -> None:
    from transformers import AutoTokenizer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=LONG_TEXT_TASKS)
    parser.add_argument("--scale", type=float, default=0.25, help="fraction of each task's real size")
    parser.add_argument("--tokenizer", help="tokenizer directory (default: the bundled m3e-small's)")
    parser.add_argument("--max-length", type=int, default=512)
    args = parser.parse_args()
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer or bundled_model_dir())
    work = Path(tempfile.mkdtemp(prefix="cmteb-tokenize-rate-"))
    build(work, args.scale, args.tasks)
    shipped_rule, limit = tokenize_module.cut_rule, prefix_chars(args.max_length)
    calls: list[int] = []  # texts per chunked call: the prefixes, then those tokenised again in full
    in_threads = tokenize_module._in_threads

    def counting(tok, texts, *rest, **kwargs):
        calls.append(len(texts))
        return in_threads(tok, texts, *rest, **kwargs)

    totals = [0.0, 0.0]
    print(f"{'task':<18}{'texts':>9}{'M chars':>9}{'> prefix':>10}{'whole s':>9}{'prefix s':>10}{'ratio':>7}  ids")
    for repo_dir in sorted(p for p in work.rglob("*") if (p / "README.md").exists()):
        texts = task_texts(repo_dir)
        LEVERS["prefix"]()
        whole_seconds, whole = timed(tokenizer, texts, args.max_length)
        tokenize_module.cut_rule = shipped_rule
        calls.clear()
        tokenize_module._in_threads = counting
        cut_seconds, cut = timed(tokenizer, texts, args.max_length)
        tokenize_module._in_threads = in_threads
        totals[0] += whole_seconds
        totals[1] += cut_seconds
        long = sum(len(text) > limit for text in texts)
        print(
            f"{repo_dir.name:<18}{len(texts):>9,}{sum(map(len, texts)) / 1e6:>9.1f}{long:>10,}{whole_seconds:>9.1f}"
            f"{cut_seconds:>10.1f}{cut_seconds / whole_seconds:>7.2f}  {'identical' if cut == whole else 'DIFFER'}"
            f" ({sum(calls[1:]):,} redone in full)"
        )
    print(f"all: whole {totals[0]:.1f} s, prefix {totals[1]:.1f} s: {totals[1] / totals[0]:.2f}")


if __name__ == "__main__":
    main()
