"""`make bench`: cmteb against plain mteb on a scaled-up mirror, cold and warm; prints figures.

(b1, b2) plain mteb (`bench/plain_mteb.py`) twice, first (the first process pays import and
compile costs), (a) `cmteb run` cold (empty embedding cache), (c) `cmteb run` again with the warm
cache; each a whole process with its own fresh datasets cache, same model, precision and batch
size; with `--also FLAGS` and/or `--also-lever LEVER`, (a2) one more cold run with those flags or with
that lever of `bench/lever_off.py` switched off (its scores checked too).
Prints wall times, ratios, per-task times, the largest main-score difference between (a) and (b)
(FAIL above 1e-4), the encoder's throughput, padding efficiency, peak memory, and model-FLOP
efficiency against a matmul measured here at the model's shapes. Figures only: nothing here
asserts a time.

CPU: `make bench` (m3e-small). One GPU, bge-large-shaped (random weights, m3e-small's tokenizer):
    `python bench/run_bench.py --shape large --device cuda --precision fp16 --batch-size 256`
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from cmteb.results.files import RUN_RECORD, read_run_record

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from build_mirror import build  # noqa: E402
from figures import (  # noqa: E402
    add_model_args,
    bench_model,
    encoder_rates,
    model_config,
    run_device,
    run_settings,
)

TASKS = ["T2Retrieval", "T2Reranking", "ATEC", "Waimai", "CLSClusteringS2S"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"FAIL: {' '.join(cmd[:4])}... exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    for line in proc.stderr.splitlines():
        if line.startswith(("T2", "ATEC", "Waimai", "CLS")) and ": /" in line:
            print(f"  reads {line}")
    return time.perf_counter() - started, proc.stdout


def cmteb_run(
    mirror: Path, out: Path, cache: Path, extra: list[str], lever: str = "none", env: dict[str, str] | None = None
) -> tuple[float, dict]:
    """`cmteb run` on the bench tasks as a whole process (with `lever` switched off, see lever_off.py)."""
    cmd = [
        sys.executable,
        str(ROOT / "bench" / "lever_off.py"),
        lever,
        "--",
        "--model",
        "m3e-small",
        "--tasks",
        *TASKS,
        "--data-dir",
        str(mirror),
        "--output-dir",
        str(out),
        "--cache-dir",
        str(cache),
        "--no-progress",
        *extra,
    ]
    wall, _ = timed(cmd, {**ENV, **(env or {})})
    record = read_run_record(next(out.rglob(RUN_RECORD)).parent.parent)
    return wall, record


def main_scores(out: Path) -> dict[str, float]:
    """Each task's main score (mean over its splits) from the result files under `out`."""
    scores = {}
    for path in out.rglob("*.json"):
        data = json.loads(path.read_text())
        if "scores" in data:
            scores[data["task_name"]] = sum(s[0]["main_score"] for s in data["scores"].values()) / len(data["scores"])
    return scores


def parse() -> tuple[argparse.Namespace, list[str]]:
    """The model and settings both sides run with; other arguments are extra `cmteb run` flags."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_args(parser)
    parser.add_argument("--pooling", help="default: cls with --shape, else mean (m3e-small's)")
    parser.add_argument(
        "--also", default="", help="flags of one more cold cmteb run, timed beside the others (e.g. '--devices cuda:0')"
    )
    parser.add_argument(
        "--also-lever", default="none", help="that run with this lever of lever_off.py off (e.g. trace)"
    )
    return parser.parse_known_args()


def plain_mteb(args: argparse.Namespace, model: Path, pooling: str, mirror: Path, cache: Path) -> tuple[float, dict]:
    """Plain mteb on the bench tasks as a whole process, with its own fresh datasets cache."""
    cmd = [sys.executable, str(ROOT / "bench" / "plain_mteb.py"), str(model), pooling, str(mirror), *TASKS]
    cmd += ["--device", args.device, "--precision", args.precision, "--batch-size", str(args.batch_size)]
    wall, out = timed(cmd, {**ENV, "HF_DATASETS_CACHE": str(cache)})
    return wall, json.loads(out.strip().splitlines()[-1])


def also_run(
    args: argparse.Namespace, mirror: Path, work: Path, extra: list[str], walls: dict[str, float]
) -> dict | None:
    """The cold run with `--also`'s flags added (and `--device` dropped where they list `--devices`) and
    `--also-lever` off, or None."""
    if not args.also and args.also_lever == "none":
        return None
    flags = args.also.split()
    if "--devices" in flags and "--device" in extra:
        at = extra.index("--device")
        extra = extra[:at] + extra[at + 2 :]
    env = {"HF_DATASETS_CACHE": str(work / "hf-a2")}
    name = f"(a2) cold {args.also}" + (f" no {args.also_lever}" if args.also_lever != "none" else "")
    walls[name], record = cmteb_run(mirror, work / "also", work / "cache2", extra + flags, args.also_lever, env)
    return record


def print_walls(walls: dict[str, float], diff: float) -> None:
    print(f"\n{'':24}{'wall s':>10}")
    for name, wall in walls.items():
        print(f"{name:24}{wall:10.1f}")
    cold, plain, warm = walls["(a) cmteb cold"], walls["(b2) plain mteb, again"], walls["(c) cmteb warm"]
    print(f"a/b2 = {cold / plain:.3f}   a/b1 = {cold / walls['(b1) plain mteb']:.3f}   c/a = {warm / cold:.3f}")
    for name, wall in walls.items():
        if name.startswith("(a2)"):
            print(f"a2/b2 = {wall / plain:.3f}")
    print(f"largest main-score difference a (and a2) vs b2: {diff:.2e} {'OK' if diff <= 1e-4 else 'FAIL'}")


def print_encoder(args: argparse.Namespace, model: Path, cold: dict, device: str) -> None:
    stats = cold["stats"]["encoder"]
    config = model_config(model)
    flops, peak = encoder_rates(model, cold, device, args.precision)
    rate = stats["texts"] / stats["seconds"]
    print(
        f"\nencoder: {stats['texts']} texts in {stats['seconds']:.1f}s = {rate:.0f} texts/s,"
        f" {stats['tokens'] / stats['seconds']:.0f} tokens/s; cache hits {cold['stats']['cache_hits']};"
        f" passes at once: {cold.get('streams') or cold.get('workers')}"
    )
    print(f"padding efficiency (real / computed tokens): {stats['tokens'] / stats['padded_tokens']:.3f}")
    print(
        f"model FLOP/s {flops / 1e9:.1f} G vs matmul {peak / 1e9:.1f} G at {config['hidden_size']}x"
        f"{config['intermediate_size']} ({device}, {args.precision}): efficiency {flops / peak:.2f}"
    )


def main() -> int:
    args, extra = parse()
    work = Path(tempfile.mkdtemp(prefix="cmteb-bench-"))
    mirror = build(work / "mirror")
    model = bench_model(args, work)
    pooling = args.pooling or ("cls" if args.shape else "mean")
    device = run_device(args, extra)
    extra = ["--model", str(model), "--pooling", pooling, *run_settings(args, extra), *extra]
    print(f"cmteb bench on {os.cpu_count()} CPU cores, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(
        f"mirror: {mirror} (20,000 passages / 500 queries retrieval, 500x20 reranking, 5,000 STS pairs, "
        f"2,000+2,000 classification, 2,000 clustering); model {model}; cmteb flags: {extra}"
    )
    walls = {}
    # The baseline first and twice: the first process pays import and compile costs.
    walls["(b1) plain mteb"], _ = plain_mteb(args, model, pooling, mirror, work / "hf-b1")
    walls["(b2) plain mteb, again"], plain = plain_mteb(args, model, pooling, mirror, work / "hf-b2")
    cache, env = work / "cache", {"HF_DATASETS_CACHE": str(work / "hf-a")}
    walls["(a) cmteb cold"], cold = cmteb_run(mirror, work / "cold", cache, extra, env=env)
    walls["(c) cmteb warm"], _ = cmteb_run(mirror, work / "warm", cache, extra, env=env)
    also = also_run(args, mirror, work, extra, walls)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    ours = main_scores(work / "cold")
    diff = max(abs(ours[t] - plain["scores"][t]) for t in TASKS)
    if also:  # the extra run must give plain mteb's scores too
        diff = max(diff, *(abs(main_scores(work / "also")[t] - plain["scores"][t]) for t in TASKS))
    print_walls(walls, diff)
    print(f"\n{'task':20}{'cmteb s':>10}{'mteb s':>10}{'ratio':>8}{'cmteb':>10}{'mteb':>10}{'texts':>8}{'a2 s':>8}")
    for t in TASKS:
        a, b = cold["tasks"][t]["seconds"], plain["seconds"][t]
        a2 = f"{also['tasks'][t]['seconds']:8.1f}" if also else ""
        print(
            f"{t:20}{a:10.1f}{b:10.1f}{a / b:8.2f}{ours[t]:10.5f}{plain['scores'][t]:10.5f}"
            f"{cold['tasks'][t]['texts_encoded']:8d}{a2}"
        )
    print_encoder(args, model, cold, device)
    if also:
        print(f"\n(a2) {args.also}:", end="")
        print_encoder(args, model, also, device)
    print(f"peak resident memory of the child processes: {peak_mb:.0f} MB")
    shutil.rmtree(work, ignore_errors=True)
    return 0 if diff <= 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
