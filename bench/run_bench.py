"""`make bench`: cmteb against plain mteb on a scaled-up mirror, cold and warm; prints figures.

(a) `cmteb run` cold (empty embedding cache), (b) plain mteb (`bench/plain_mteb.py`), (c) `cmteb run`
again with the warm cache, each as a whole process. Prints wall times, ratios, per-task
times, the largest main-score difference between (a) and (b) (FAIL above 1e-4), the encoder's
throughput, padding efficiency, peak memory, and model-FLOP efficiency against a matmul
measured here at the model's shapes. Figures only: nothing here asserts a time.
"""

from __future__ import annotations

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

from cmteb.assets import bundled_model_dir  # noqa: E402

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


def cmteb_run(mirror: Path, out: Path, cache: Path, extra: list[str], lever: str = "none") -> tuple[float, dict]:
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
    wall, _ = timed(cmd, ENV)
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


def matmul_flops(hidden: int, ffn: int, repeats: int = 10) -> float:
    """Best fp32 matmul FLOP/s measured now at the model's shapes (projections and feed-forward)."""
    best = 0.0
    for tokens in (2048, 8192):
        for m, n in ((hidden, hidden), (hidden, ffn), (ffn, hidden)):
            a, b = torch.randn(tokens, m), torch.randn(m, n)
            for _ in range(3):
                a @ b
            for _ in range(3):
                started = time.perf_counter()
                for _ in range(repeats):
                    a @ b
                best = max(best, 2 * tokens * m * n * repeats / (time.perf_counter() - started))
    return best


def model_flops(record: dict, config: dict, n_params_non_embedding: int) -> float:
    """2 x non-embedding parameters x tokens computed, plus attention (QK^T and AV) per batch."""
    stats = record["stats"]["encoder"]
    seq = stats["padded_tokens"] / max(1, stats["texts"])
    attention = 4 * config["num_hidden_layers"] * seq * config["hidden_size"] * stats["padded_tokens"]
    return 2 * n_params_non_embedding * stats["padded_tokens"] + attention


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="cmteb-bench-"))
    mirror = build(work / "mirror")
    model_dir = bundled_model_dir()
    config = json.loads((model_dir / "config.json").read_text())
    extra = sys.argv[1:]
    print(f"cmteb bench on {os.cpu_count()} CPU cores, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(
        f"mirror: {mirror} (20,000 passages / 500 queries retrieval, 500x20 reranking, 5,000 STS pairs, "
        f"2,000+2,000 classification, 2,000 clustering); extra cmteb flags: {extra or 'none'}"
    )

    plain_wall, plain_out = timed(
        [sys.executable, str(ROOT / "bench" / "plain_mteb.py"), str(model_dir), "mean", str(mirror), *TASKS], ENV
    )
    plain = json.loads(plain_out.strip().splitlines()[-1])
    cache = work / "cache"
    cold_wall, cold = cmteb_run(mirror, work / "cold", cache, extra)
    warm_wall, _ = cmteb_run(mirror, work / "warm", cache, extra)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    ours = main_scores(work / "cold")
    diff = max(abs(ours[t] - plain["scores"][t]) for t in TASKS)

    print(f"\n{'':24}{'wall s':>10}")
    print(f"{'(a) cmteb cold':24}{cold_wall:10.1f}")
    print(f"{'(b) plain mteb':24}{plain_wall:10.1f}")
    print(f"{'(c) cmteb warm':24}{warm_wall:10.1f}")
    print(f"a/b = {cold_wall / plain_wall:.3f}   c/a = {warm_wall / cold_wall:.3f}")
    print(f"largest main-score difference a vs b: {diff:.2e} {'OK' if diff <= 1e-4 else 'FAIL'}")
    print(f"\n{'task':20}{'cmteb s':>10}{'mteb s':>10}{'ratio':>8}{'cmteb':>10}{'mteb':>10}{'texts':>8}")
    for t in TASKS:
        a, b = cold["tasks"][t]["seconds"], plain["seconds"][t]
        print(
            f"{t:20}{a:10.1f}{b:10.1f}{a / b:8.2f}{ours[t]:10.5f}{plain['scores'][t]:10.5f}"
            f"{cold['tasks'][t]['texts_encoded']:8d}"
        )

    stats = cold["stats"]["encoder"]
    embedding_params = (config["vocab_size"] + config["max_position_embeddings"] + config["type_vocab_size"]) * config[
        "hidden_size"
    ]
    from transformers import AutoModel

    n_params = sum(p.numel() for p in AutoModel.from_pretrained(model_dir).parameters())
    flops = model_flops(cold, config, n_params - embedding_params) / stats["seconds"]
    peak = matmul_flops(config["hidden_size"], config["intermediate_size"])
    rate = stats["texts"] / stats["seconds"]
    print(
        f"\nencoder: {stats['texts']} texts in {stats['seconds']:.1f}s = {rate:.0f} texts/s,"
        f" {stats['tokens'] / stats['seconds']:.0f} tokens/s; cache hits {cold['stats']['cache_hits']}"
    )
    print(f"padding efficiency (real / computed tokens): {stats['tokens'] / stats['padded_tokens']:.3f}")
    print(
        f"model FLOP/s {flops / 1e9:.1f} G vs matmul {peak / 1e9:.1f} G at {config['hidden_size']}x"
        f"{config['intermediate_size']}: efficiency {flops / peak:.2f}"
    )
    print(f"peak resident memory of the child processes: {peak_mb:.0f} MB")
    shutil.rmtree(work, ignore_errors=True)
    return 0 if diff <= 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
