"""`make bench-levers`: each speed lever measured before and after, as whole `cmteb run` processes.

On the same scaled-up mirror and tasks as `make bench`, each configuration with a fresh cache:
- shipped (every lever on), cold;
- without the embedding cache (every requested text encoded, repeats included), cold;
- without length sorting (batches in input order), cold;
- without the cap on padded tokens per forward pass (`--batch-tokens 0`; on CPU the default is 1,024), cold;
- one forward pass at a time on every core (`--cpu-streams 1`; on CPU the default is one pass per core), cold;
- a rerun into a new folder with the result store (shipped), and with only the embedding cache.
Prints wall time, texts encoded, padding efficiency and throughput for each, and the largest
main-score difference from the shipped cold run (FAIL above 1e-4: a lever must not move scores).
Figures only: nothing here asserts a time.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import torch
from build_mirror import build
from run_bench import TASKS, cmteb_run, main_scores


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="cmteb-levers-"))
    mirror = build(work / "mirror")
    print(f"cmteb levers on {torch.get_num_threads()} threads, tasks: {', '.join(TASKS)}")
    configs = [
        # name, lever switched off, extra flags, cache folder (shared by the warm reruns)
        ("shipped, cold", "none", [], "shipped"),
        ("no embedding cache, cold", "dedupe", [], "dedupe"),
        ("no length sorting, cold", "length-sort", [], "unsorted"),
        ("no token cap per pass, cold", "none", ["--batch-tokens", "0"], "uncapped"),
        ("one pass at a time, cold", "none", ["--cpu-streams", "1"], "one-stream"),
        ("rerun, result store", "none", [], "shipped"),
        ("rerun, embedding cache only", "result-store", [], "shipped"),
    ]
    rows, reference = [], None
    for k, (name, lever, extra, cache) in enumerate(configs):
        out = work / f"out{k}"
        wall, record = cmteb_run(mirror, out, work / f"cache-{cache}", extra, lever)
        scores = main_scores(out)
        reference = reference or scores
        diff = max(abs(scores[t] - reference[t]) for t in TASKS)
        stats = (
            record.get("stats", {}).get("encoder", {})
            if any(e.get("texts_encoded") for e in record["tasks"].values())
            else {}
        )
        rows.append((name, wall, stats, diff))
        print(f"  done: {name} ({wall:.1f} s)", flush=True)

    print(f"\n{'configuration':32}{'wall s':>9}{'texts':>8}{'padding':>9}{'texts/s':>9}{'max diff':>10}")
    for name, wall, stats, diff in rows:
        texts = stats.get("texts", 0)
        padding = f"{stats['tokens'] / stats['padded_tokens']:.3f}" if stats else "—"
        rate = f"{texts / stats['seconds']:.0f}" if stats else "—"
        print(f"{name:32}{wall:9.1f}{texts:8d}{padding:>9}{rate:>9}{diff:10.1e}{'' if diff <= 1e-4 else ' FAIL'}")
    base = rows[0][1]
    print("\nbefore -> after, wall s:")
    for lever, before, after in (
        ("embedding cache (each distinct text once)", rows[1][1], base),
        ("length-sorted batches", rows[2][1], base),
        ("padded tokens per pass capped (CPU: 1,024)", rows[3][1], base),
        ("one pass per core (CPU streams)", rows[4][1], base),
        ("result store (rerun into a new folder)", rows[6][1], rows[5][1]),
    ):
        print(f"  {lever:46}{before:8.1f} -> {after:6.1f}   x{before / after:.2f}")
    shutil.rmtree(work, ignore_errors=True)
    return 0 if all(diff <= 1e-4 for *_, diff in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
