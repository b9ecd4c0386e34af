"""GPU check of batch-invariant encoding: bit-identical embeddings whatever the batch composition.

Builds a bge-large-shaped BERT (24 x 1024, random weights) with the bert-base-chinese vocabulary of
the tokenizer folder given, then, per precision, encodes the same texts (a) in shared length-sorted
batches of two compositions and (b) one text per forward pass in two orders and subsets, and prints
the largest embedding difference of each and the throughput of both modes. Usage:
    python bench/gpu_invariance.py TOKENIZER_DIR [N_TEXTS]
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from cmteb.models.encoder import BGEEncoder

sys.path.insert(0, str(Path(__file__).resolve().parent))
from figures import shaped_model


def texts(tokenizer_dir: Path, n: int, seed: int = 0) -> list[str]:
    """`n` texts of 8 to 120 random CJK characters of the tokenizer's vocabulary (no real text is needed)."""
    vocab = json.loads((tokenizer_dir / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"]
    chars = sorted(t for t in vocab if len(t) == 1 and "\u4e00" <= t <= "\u9fff")
    rng = random.Random(seed)
    return [f"{i}" + "".join(rng.choice(chars) for _ in range(rng.randint(8, 120))) for i in range(n)]


def encode(model_dir: Path, precision: str, batch: list[str], batch_size: int) -> tuple[np.ndarray, float]:
    enc = BGEEncoder.load(str(model_dir), pooling="cls", precision=precision, batch_size=batch_size, device="cuda")
    enc.encode(batch[:64])  # warm-up
    torch.cuda.synchronize()
    started = time.perf_counter()
    out = enc.encode(batch)
    torch.cuda.synchronize()
    return out, time.perf_counter() - started


def main() -> None:
    tokenizer_dir = Path(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    corpus = texts(tokenizer_dir, n)
    order = list(range(n))
    random.Random(1).shuffle(order)
    shuffled = [corpus[i] for i in order]
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = shaped_model("large", tokenizer_dir, Path(tmp) / "bge-large-shaped")
        print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, {n} texts")
        for precision in ("fp16", "bf16", "fp32"):
            a, ta = encode(model_dir, precision, corpus, 256)
            b, _ = encode(model_dir, precision, shuffled + corpus[:7], 96)
            b = b[np.argsort(order)]
            one, t1 = encode(model_dir, precision, corpus, 1)
            two, _ = encode(model_dir, precision, shuffled, 1)
            two = two[np.argsort(order)]
            sub, _ = encode(model_dir, precision, corpus[::3], 1)
            print(
                f"{precision}: shared batches 256 vs 96 (other composition) max diff {np.abs(a - b).max():.3g}; "
                f"one text per pass, two orders max diff {np.abs(one - two).max():.3g}, "
                f"subset max diff {np.abs(one[::3] - sub).max():.3g}; "
                f"texts/s batched {n / ta:.0f} vs one per pass {n / t1:.0f}"
            )


if __name__ == "__main__":
    main()
