"""The network's own forward rate at fixed shapes: the ceiling any encoder loop can reach.

Times `model(input_ids, attention_mask)` alone (no tokenising, no copies) at a few (batch, length)
shapes, with no mask (what transformers passes SDPA for a batch without padding, so it may pick
flash attention), with one padded row (SDPA then gets a mask), and, with `--compile`, under
`torch.compile`. Prints milliseconds per batch, tokens/s and model-FLOP efficiency against the best
matmul measured on the same device in the same precision. On one GPU:
    python bench/forward_rate.py --shape large --tokenizer DIR --device cuda --precision fp16
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from figures import DTYPES, add_model_args, bench_model, matmul_rate, model_config, non_embedding_parameters

SHAPES = ((256, 512), (256, 128), (256, 32), (4096, 32))


def per_batch_seconds(model: torch.nn.Module, ids: torch.Tensor, mask: torch.Tensor | None, device: str) -> float:
    """Best of five timed forward passes after two warm-up passes."""
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    best = float("inf")
    with torch.inference_mode():
        for attempt in range(7):
            sync()
            started = time.perf_counter()
            model(input_ids=ids, attention_mask=mask)
            sync()
            if attempt >= 2:
                best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    from transformers import AutoModel

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_args(parser)
    parser.add_argument("--compile", action="store_true", help="also time the network under torch.compile")
    args = parser.parse_args()
    model_dir = bench_model(args, Path(tempfile.mkdtemp(prefix="cmteb-forward-rate-")))
    config = model_config(model_dir)
    dtype = DTYPES[args.precision]
    model = AutoModel.from_pretrained(model_dir, dtype=dtype).to(args.device).eval()
    per_token = 2 * non_embedding_parameters(model_dir)
    peak = matmul_rate(config["hidden_size"], config["intermediate_size"], args.device, args.precision)
    print(f"{model_dir.name} on {args.device} in {args.precision}: matmul {peak / 1e12:.1f} TFLOP/s at its shapes")
    print(f"attention: {model.config._attn_implementation}; torch {torch.__version__}")
    variants = {"eager": model}
    if args.compile:
        variants["torch.compile"] = torch.compile(model, dynamic=True)
    print(f"\n{'variant':16}{'batch':>7}{'length':>8}{'mask':>6}{'ms':>9}{'tokens/s':>13}{'MFU':>7}")
    generator = torch.Generator().manual_seed(0)
    for name, net in variants.items():
        for batch, length in SHAPES:
            ids = torch.randint(1000, 20000, (batch, length), generator=generator).to(args.device)
            padded = torch.ones_like(ids)
            padded[-1, length // 2 :] = 0
            for mask in (None, padded):
                seconds = per_batch_seconds(net, ids, mask, args.device)
                flops = (per_token + 4 * config["num_hidden_layers"] * length * config["hidden_size"]) * ids.numel()
                print(
                    f"{name:16}{batch:7d}{length:8d}{'no' if mask is None else 'yes':>6}{seconds * 1e3:9.1f}"
                    f"{ids.numel() / seconds:13,.0f}{flops / seconds / peak:7.3f}"
                )


if __name__ == "__main__":
    main()
