"""What the benchmarks share: a BGE-shaped model with random weights, and the encoder's efficiency figures.

- `shaped_model`: a BERT of bge-base-zh or bge-large-zh shape (random weights; no real BGE weights
  exist offline) with the bert-base-chinese vocabulary of the tokenizer folder given (m3e-small's).
- `matmul_rate`: the best matmul FLOP/s measured now at the model's shapes, on the device and in
  the precision the run used: the ceiling a model-FLOP efficiency is taken against.
- `forward_flops`, `model_flops`: the FLOPs of forward passes, and those an encoder's counters say it
  computed.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from cmteb.models import plan
from cmteb.models.speed.first_token import pays_on
from cmteb.models.speed.streams import parallel_passes

SHAPES = {  # (layers, hidden, heads, feed-forward) of bge-base-zh-v1.5 and bge-large-zh-v1.5
    "base": (12, 768, 12, 3072),
    "large": (24, 1024, 16, 4096),
    # One narrow layer: its forward costs next to nothing, so a run with it times the harness around the
    # model (data, tokenising, search, evaluation) at sizes a CPU could never encode with a real model.
    "tiny": (1, 64, 2, 128),
    # bge-large's 24 layers at a width whose arithmetic costs next to nothing: on a CPU its forward time is
    # the host's cost of driving a bge-large forward (Python, module calls, operator dispatch), which a
    # GPU's host pays per batch too.
    "large-narrow": (24, 64, 16, 256),
}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@contextmanager
def fill_rows(fill: bool) -> Iterator[None]:
    """While the block runs, passes filled to their token budget as cmteb fills them, or (`fill` false) every
    pass `--batch-size` texts, as the `fill` lever of `bench/lever_off.py` has it."""
    shipped, plan.FILL_ROWS = plan.FILL_ROWS, plan.FILL_ROWS if fill else 1
    try:
        yield
    finally:
        plan.FILL_ROWS = shipped


def add_model_args(parser: argparse.ArgumentParser) -> None:
    """The options every benchmark takes for the model it times and how it runs it."""
    parser.add_argument("--model", type=Path, help="a model folder (default: the bundled m3e-small, or --shape)")
    parser.add_argument("--shape", choices=sorted(SHAPES), help="a bge-shaped BERT with random weights, CLS pooling")
    parser.add_argument("--tokenizer", type=Path, help="tokenizer folder for --shape (default: m3e-small's)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--batch-size", type=int, default=32)


def run_device(args: argparse.Namespace, extra: list[str]) -> str:
    """The kind of device the run's model works on: the listed devices' with `--devices`, else `--device`."""
    if "--devices" not in extra:
        return args.device
    listed = extra[extra.index("--devices") + 1 :][:1]
    return "cuda" if any("cuda" in devices for devices in listed) else "cpu"


def run_settings(args: argparse.Namespace, extra: list[str]) -> list[str]:
    """The `cmteb run` flags of `add_model_args`' settings; no `--device` where the extra flags list `--devices`
    (cmteb refuses both: the listed devices say where the model runs)."""
    device = [] if "--devices" in extra else ["--device", args.device]
    return [*device, "--precision", args.precision, "--batch-size", str(args.batch_size)]


def bench_model(args: argparse.Namespace, work: Path) -> Path:
    """The folder of the model `add_model_args` chose: --model, a --shape built under `work`, or m3e-small."""
    from cmteb.assets import bundled_model_dir

    if args.model:
        return args.model
    if args.shape:
        return shaped_model(args.shape, args.tokenizer or bundled_model_dir(), work / f"bge-{args.shape}-shaped")
    return bundled_model_dir()


def shaped_model(shape: str, tokenizer_dir: Path, out: Path) -> Path:
    """Save a randomly initialised BERT of `shape` with the tokenizer of `tokenizer_dir` to `out`. It is written
    beside `out` and renamed into place, so an `out` that exists is complete and is kept (the seed is fixed: the
    weights would be the same)."""
    from transformers import BertConfig, BertModel

    if out.exists():
        return out
    layers, hidden, heads, ffn = SHAPES[shape]
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=21128,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=ffn,
        max_position_embeddings=512,
    )
    partial = out.with_name(out.name + ".partial")
    BertModel(config).save_pretrained(partial)
    for name in TOKENIZER_FILES:
        if (tokenizer_dir / name).is_file():
            (partial / name).write_bytes((tokenizer_dir / name).read_bytes())
    partial.rename(out)
    return out


def matmul_rate(hidden: int, ffn: int, device: str = "cpu", precision: str = "fp32", repeats: int = 10) -> float:
    """Best matmul FLOP/s measured now at the model's shapes (projections and feed-forward). On a CPU the best
    of one matmul on every core and one single-threaded matmul per core at once (how `--cpu-streams` runs)."""
    dtype = DTYPES[precision] if device.startswith("cuda") else torch.float32
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    best = 0.0
    for tokens in (2048, 8192) if device == "cpu" else (8192, 32768):
        for m, n in ((hidden, hidden), (hidden, ffn), (ffn, hidden)):
            a, b = torch.randn(tokens, m, device=device, dtype=dtype), torch.randn(m, n, device=device, dtype=dtype)
            for _ in range(3):
                a @ b
            for _ in range(3):
                sync()
                started = time.perf_counter()
                for _ in range(repeats):
                    a @ b
                sync()
                best = max(best, 2 * tokens * m * n * repeats / (time.perf_counter() - started))
    return max(best, _matmul_rate_per_core(hidden, ffn, repeats)) if device == "cpu" else best


def _matmul_rate_per_core(hidden: int, ffn: int, repeats: int) -> float:
    """Matmul FLOP/s with one single-threaded matmul per core at once, at the CPU's pass size, on the very
    streams the encoder's passes run on (`parallel_passes`)."""
    cores, tokens = torch.get_num_threads(), 1024
    shapes = ((hidden, hidden), (hidden, ffn), (ffn, hidden))
    operands = [(torch.randn(tokens, m), torch.randn(m, n)) for m, n in shapes]

    def run(_: int, __: dict[str, torch.Tensor]) -> None:
        for a, b in operands:
            for _ in range(repeats):
                a @ b

    def seconds() -> float:
        started = time.perf_counter()
        with parallel_passes(run, cores) as submit:
            for core in range(cores):
                submit(core, {})
        return time.perf_counter() - started

    flops = cores * sum(2 * tokens * b.shape[0] * b.shape[1] * repeats for _, b in operands)
    seconds()  # warm-up
    return max(flops / seconds() for _ in range(3))


def non_embedding_parameters(model_dir: Path) -> int:
    """Parameters outside the embedding tables, from the checkpoint's shapes (2 FLOPs each per token)."""
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(model_dir)
    with torch.device("meta"):
        model = AutoModel.from_config(config)
    embeddings = sum(p.numel() for p in model.embeddings.parameters())
    return sum(p.numel() for p in model.parameters()) - embeddings


def forward_flops(
    config: dict[str, Any], n_non_embedding: int, tokens: int, texts: int, first_token_only: bool = False
) -> float:
    """FLOPs of forward passes over `texts` texts of `tokens` padded tokens in all: 2 x non-embedding
    parameters per token, plus attention (QK^T and AV). With the last layer computed for the first token
    alone (CLS pooling: cmteb.models.speed.first_token), that layer's query, attention output and feed-forward
    count once per text, not once per token: the FLOPs done, not those of a full forward."""
    hidden, ffn, layers = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
    seq = tokens / max(1, texts)
    flops = 2 * n_non_embedding * tokens + 4 * layers * seq * hidden * tokens
    if first_token_only:
        per_row = 2 * (2 * hidden * hidden + 2 * hidden * ffn) + 4 * seq * hidden
        flops -= per_row * (tokens - texts)
    return flops


def model_flops(
    encoder_stats: dict[str, Any], config: dict[str, Any], n_non_embedding: int, pooling: str, device: str
) -> float:
    """The FLOPs an encoder's counters say it computed (`forward_flops`; CLS pooling on a CPU: first token only)."""
    tokens, texts = encoder_stats["padded_tokens"], encoder_stats["texts"]
    return forward_flops(config, n_non_embedding, tokens, texts, first_token_only=pooling == "cls" and pays_on(device))


def encoder_rates(model_dir: Path, record: dict[str, Any], device: str, precision: str) -> tuple[float, float]:
    """The model FLOP/s a run record's encoder counters say it reached, and the matmul FLOP/s measured now
    at the model's shapes on `device` (the ceiling its model-FLOP efficiency is taken against)."""
    stats, config = record["stats"]["encoder"], model_config(model_dir)
    flops = model_flops(stats, config, non_embedding_parameters(model_dir), record["pooling"], device)
    return flops / stats["seconds"], matmul_rate(config["hidden_size"], config["intermediate_size"], device, precision)


def model_config(model_dir: Path) -> dict[str, Any]:
    """The checkpoint's config.json."""
    return json.loads((Path(model_dir) / "config.json").read_text())
