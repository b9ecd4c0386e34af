"""`make bench-full`: every task of the default protocol at its real size, end to end, with per-task figures.

Builds the synthetic full-size mirror (`bench/full_mirror.py`) at `--scale`, then runs `cmteb run`
on its 31 tasks as one process with an empty embedding cache, and prints, per task: wall seconds,
seconds inside the model (its forward passes), the rest (tokenising, evaluation, the harness) and
texts encoded; then the process wall, the share of it outside the model, padding efficiency,
model-FLOP efficiency against a matmul measured on the same device in the same precision, and the
peak GPU memory. Figures only: nothing here asserts a time.

CPU (the bundled m3e-small; about 2.5 minutes on 2 cores): `python bench/bench_full.py --scale 0.001`
One GPU, bge-base-shaped (random weights, m3e-small's tokenizer):
    `python bench/bench_full.py --shape base --device cuda --precision fp16 --batch-size 256`
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from figures import (  # noqa: E402
    add_model_args,
    bench_model,
    encoder_rates,
    run_device,
    run_settings,
)
from full_mirror import build  # noqa: E402

from cmteb.results.files import RUN_RECORD, read_run_record  # noqa: E402


def parse() -> tuple[argparse.Namespace, list[str]]:
    """The benchmark's options; other arguments are extra `cmteb run` flags (e.g. `--devices cuda:0`)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of each task's real size")
    add_model_args(parser)
    parser.add_argument("--tasks", nargs="*", help="task names (default: the default protocol's 31)")
    parser.add_argument(
        "--work",
        type=Path,
        help="folder for the mirror, model and results (default: a temp one); a mirror and "
        "model already built there at the same scale and tasks are reused, the run's results and caches are not",
    )
    parser.add_argument("--build-only", action="store_true", help="build the mirror and model in --work, run nothing")
    parser.add_argument("--time-limit", type=float, help="stop the run after this many seconds; report what finished")
    parser.add_argument("--lever", default="none", help="run with this lever of bench/lever_off.py off (e.g. prefix)")
    return parser.parse_known_args()


def run_cmteb(
    args: argparse.Namespace, model: Path, names: list[str], work: Path, extra: list[str]
) -> tuple[float, dict]:
    """`cmteb run` on the mirror as one process (its lines passed through); its wall seconds and run record.

    With `--time-limit` the process is killed at the limit; the run record, written task by task,
    still holds every task that finished.
    """
    out = work / "results"
    for produced in (out, work / "cache", work / "hf"):  # a cold run: nothing of an earlier run in --work
        shutil.rmtree(produced, ignore_errors=True)
    cmd = [sys.executable, str(ROOT / "bench" / "lever_off.py"), args.lever, "--", "--model", str(model)]
    cmd += ["--tasks", *names, "--data-dir", str(work / "mirror"), "--output-dir", str(out)]
    cmd += ["--cache-dir", str(work / "cache"), "--no-progress", *run_settings(args, extra), *extra]
    if args.shape and not args.model:
        cmd += ["--pooling", "cls"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_DATASETS_CACHE": str(work / "hf")}
    started = time.perf_counter()
    with open(work / "stderr.txt", "w") as stderr:
        proc = subprocess.Popen(cmd, env=env, stderr=stderr, text=True)
        try:
            code = proc.wait(timeout=args.time_limit)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
            print(f"stopped at the time limit of {args.time_limit:.0f} s", flush=True)
    wall = time.perf_counter() - started
    records = list(out.rglob(RUN_RECORD))
    if not records or (code != 0 and args.time_limit is None):
        sys.exit(f"FAIL: cmteb run exited {code}:\n{(work / 'stderr.txt').read_text()[-3000:]}")
    return wall, read_run_record(records[0].parent.parent)


def print_tasks(record: dict) -> float:
    """The per-task table; the model seconds of all tasks. In a pipelined run a task's model seconds were
    mostly spent while the task before it was evaluated (so its rest can be negative)."""
    print(f"\npipelined: {record.get('pipeline', False)}")
    print(f"{'task':<24}{'wall s':>9}{'model s':>9}{'rest s':>9}{'texts':>10}")
    total = 0.0
    for name, entry in record["tasks"].items():
        wall, model = entry["seconds"], entry.get("model_seconds", 0.0)
        total += model
        print(f"{name:<24}{wall:9.1f}{model:9.1f}{wall - model:9.1f}{entry['texts_encoded']:10,}")
    return total


def mirror(args: argparse.Namespace, work: Path) -> tuple[list[str], float]:
    """The mirror's task names and its build seconds (0 where one built in `work` for the same request is reused).

    A marker written after a complete build records the request, so a build cut short is never reused."""
    marker = work / "mirror" / "built.json"
    request = {"scale": args.scale, "tasks": args.tasks}
    built = json.loads(marker.read_text()) if marker.exists() else {}
    if built.get("request") == request:
        return built["names"], 0.0
    shutil.rmtree(work / "mirror", ignore_errors=True)
    started = time.perf_counter()
    names = build(work / "mirror", args.scale, args.tasks)
    marker.write_text(json.dumps({"request": request, "names": names}))
    return names, time.perf_counter() - started


def main() -> int:
    args, extra = parse()
    if args.build_only and not args.work:
        sys.exit("--build-only needs --work: the folder a later run reuses")
    work = args.work or Path(tempfile.mkdtemp(prefix="cmteb-bench-full-"))
    names, built = mirror(args, work)
    model = bench_model(args, work)
    print(f"mirror: {len(names)} tasks at scale {args.scale}, built in {built:.1f} s (0: reused); model {model}")
    if args.build_only:
        return 0
    device = run_device(args, extra)
    print(
        f"device {device}, {args.precision}, batch {args.batch_size}; {os.cpu_count()} CPU cores; flags {extra}"
        + (f"; lever off: {args.lever}" if args.lever != "none" else "")
    )
    wall, record = run_cmteb(args, model, names, work, extra)
    if not record["tasks"]:
        sys.exit(f"no task finished within the time limit of {args.time_limit:.0f} s")
    model_seconds = print_tasks(record)
    stats = record["stats"]["encoder"]
    flops, ceiling = encoder_rates(model, record, device, args.precision)
    print(f"\ncmteb run process wall: {wall:.1f} s (mirror build {built:.1f} s not included)")
    tasks_seconds = sum(e["seconds"] for e in record["tasks"].values())
    print(
        f"{len(record['tasks'])} tasks finished in {tasks_seconds:.1f} s, the model busy {model_seconds:.1f} s: "
        f"share outside the model (the model idle) {1 - model_seconds / tasks_seconds:.2f} of the tasks' time, "
        f"{1 - model_seconds / wall:.2f} of the process wall"
    )
    print(
        f"encoder: {stats['texts']:,} texts, {stats['tokens']:,} tokens, {stats['tokens'] / stats['seconds']:,.0f} "
        f"tokens/s; padding efficiency {stats['tokens'] / stats['padded_tokens']:.3f}"
    )
    print(f"model FLOP/s {flops / 1e12:.2f} T vs matmul {ceiling / 1e12:.2f} T: efficiency {flops / ceiling:.2f}")
    peak = record["stats"].get("gpu_peak_memory_bytes")
    print(f"peak GPU memory: {peak / 2**30:.1f} GiB" if peak else "peak GPU memory: no GPU used")
    return 0


if __name__ == "__main__":
    sys.exit(main())
