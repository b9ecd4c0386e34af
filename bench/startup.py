"""Where a cold `cmteb run` spends its start: imports, config and plan, then data and weights loading.

Runs the bench tasks on a mirror up to the moment the first task would be evaluated, and prints each
phase's seconds (the model's load, in its own thread beside the data, timed apart) and the top
items of this thread's profile from config to loaded (cProfile, cumulative: one profiler at a
time). A fresh datasets cache and embedding cache each time; the fingerprint memo is the user's, as
in a second run of a model (--fresh-memo: as in a first run). Figures only.

    python bench/startup.py --model DIR --data-dir MIRROR [--device cuda --precision fp16]
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

started = time.perf_counter()
import cmteb.runner.systems as systems  # noqa: E402  (the imports a run that loads a model pays)
from cmteb.runner import run  # noqa: E402
from cmteb.runner.systems import cores  # noqa: E402

imported = time.perf_counter()
TASKS = ["T2Retrieval", "T2Reranking", "ATEC", "Waimai", "CLSClusteringS2S"]


class Loaded(Exception):
    """Raised once the system is loaded: the start is over."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument(
        "--data-dir", type=Path, required=True, help="a mirror of the tasks (build_mirror.py, full_mirror.py)"
    )
    parser.add_argument("--pooling", default="cls")
    parser.add_argument("--device")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--top", type=int, default=25, help="profile items to print")
    parser.add_argument("--tasks", nargs="*", default=TASKS, help="default: the bench tasks")
    parser.add_argument("--fresh-memo", action="store_true", help="hash the model and the mirror as a first run does")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cmteb-startup-"))
    os.environ["HF_DATASETS_CACHE"] = str(work / "hf")
    if args.fresh_memo:
        os.environ["CMTEB_CACHE"] = str(work / "memo")
    load_system, phases = systems.load_system, {}

    def timed_load(*a: object, **k: object) -> None:
        phases["config and plan"] = time.perf_counter() - phases.pop("begun")
        begun = time.perf_counter()
        system = load_system(*a, **k)
        phases["data and weights"] = time.perf_counter() - begun
        system.close()  # stops the encode-ahead thread a GPU run starts
        raise Loaded

    systems.load_system = timed_load
    profile, load_embedder = cProfile.Profile(), cores.embedding_model

    def timed_embedder(*a: object, **k: object) -> object:
        begun = time.perf_counter()
        embedder = load_embedder(*a, **k)  # in its own thread, beside the data (not profiled: one profiler at a time)
        phases["of which the model, beside the data"] = time.perf_counter() - begun
        return embedder

    cores.embedding_model = timed_embedder
    phases["begun"] = time.perf_counter()
    with profile, contextlib.suppress(Loaded):
        run(str(args.model), tasks=args.tasks, data_dir=args.data_dir, output_dir=work / "out",
            cache_dir=work / "cache", show_progress=False, pooling=args.pooling, device=args.device,
            precision=args.precision)  # fmt: skip
    print(f"imports {imported - started:.2f} s", *(f"{k} {v:.2f} s" for k, v in phases.items()), sep="; ")
    pstats.Stats(profile, stream=sys.stdout).sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    main()
