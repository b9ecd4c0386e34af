"""Forward-pass size against speed: tokens/s when the same texts go through the network in passes of at
most N padded tokens (what `--batch-tokens N` does), for texts of several lengths.

The figure behind CPU_BATCH_TOKENS, the CPU's default cap: on a CPU a pass of many thousand tokens
spills its activations out of the cache, and the element-wise work between the matmuls then waits on
memory. Rounds are interleaved (each round times every cap once) and the best round is kept, so a
machine whose speed drifts favours no cap. On 2 CPU cores, the bundled m3e-small:
    python bench/pass_tokens.py
and a bge-base-shaped BERT (random weights): `python bench/pass_tokens.py --shape base --lengths 512 128 48`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from figures import DTYPES, add_model_args, bench_model

from cmteb.defaults import CPU_BATCH_TOKENS


def best_seconds(model: torch.nn.Module, ids: torch.Tensor, caps: list[int], rounds: int) -> dict[int, float]:
    """Best seconds over `rounds` to run all of `ids` in passes of at most `cap` tokens, for each cap."""
    best = dict.fromkeys(caps, float("inf"))
    length = ids.shape[1]
    sync = torch.cuda.synchronize if ids.is_cuda else (lambda: None)
    with torch.inference_mode():
        model(input_ids=ids[:2])  # warm-up
        for _ in range(rounds):
            for cap in caps:
                per_pass = max(1, cap // length)
                sync()
                started = time.perf_counter()
                for start in range(0, len(ids), per_pass):
                    model(input_ids=ids[start : start + per_pass])
                sync()
                best[cap] = min(best[cap], time.perf_counter() - started)
    return best


def main() -> None:
    from transformers import AutoModel

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_args(parser)
    parser.add_argument("--lengths", type=int, nargs="+", default=[512, 256, 128, 64, 32], help="tokens per text")
    parser.add_argument("--caps", type=int, nargs="+", default=[512, 1024, 2048, 4096, 16384], help="tokens per pass")
    parser.add_argument("--tokens", type=int, default=16384, help="tokens timed per length and cap")
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    model_dir = bench_model(args, Path(tempfile.mkdtemp(prefix="cmteb-pass-tokens-")))
    model = AutoModel.from_pretrained(model_dir, dtype=DTYPES[args.precision]).to(args.device).eval()
    print(f"{model_dir.name} on {args.device} ({torch.get_num_threads()} threads), {args.precision}; tokens/s")
    print(f"default cap on a CPU: {CPU_BATCH_TOKENS} tokens per pass\n")
    print(f"{'length':>7}" + "".join(f"{cap:>9}" for cap in args.caps) + f"{'best':>9}{'gain':>8}")
    generator = torch.Generator().manual_seed(0)
    for length in args.lengths:
        ids = torch.randint(1000, 20000, (max(1, args.tokens // length), length), generator=generator)
        seconds = best_seconds(model, ids.to(args.device), args.caps, args.rounds)
        rates = {cap: ids.numel() / s for cap, s in seconds.items()}
        best = max(rates, key=rates.get)
        gain = rates[best] / rates[max(args.caps)] - 1  # against the largest pass timed
        print(f"{length:7d}" + "".join(f"{rates[cap]:9,.0f}" for cap in args.caps) + f"{best:9d}{gain:8.1%}")


if __name__ == "__main__":
    main()
