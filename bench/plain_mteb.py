"""The reference path: plain `mteb.evaluate` with mteb's own sentence-transformers wrapper.

Usage: python bench/plain_mteb.py MODEL_DIR POOLING DATA_DIR [--device D] [--precision P] [--batch-size N]
TASK... > scores.json. Prints {"seconds": {task: s}, "scores": {task: main score}, "wall": s} as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

started = time.perf_counter()

import mteb  # noqa: E402
from mteb.models.sentence_transformer_wrapper import SentenceTransformerEncoderWrapper  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402
from sentence_transformers.models import Normalize, Pooling, Transformer  # noqa: E402

from cmteb.tasks.build import build_task  # noqa: E402
from cmteb.tasks.mirror import mirror_dataset_cache, mirror_fingerprint  # noqa: E402
from cmteb.tasks.registry import load_registry  # noqa: E402

DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def sentence_transformer(model_dir: str, pooling: str, device: str, precision: str) -> SentenceTransformer:
    """The model as sentence-transformers runs it: transformer (512 tokens), pooling, normalisation."""
    import torch

    transformer = Transformer(model_dir, max_seq_length=512)
    st = SentenceTransformer(
        modules=[transformer, Pooling(transformer.get_embedding_dimension(), pooling_mode=pooling), Normalize()],
        device=device,
    )
    return st.to(getattr(torch, DTYPES[precision]))


def main(
    model_dir: str, pooling: str, data_dir: str, tasks: list[str], device: str, precision: str, batch: int
) -> dict:
    wrapper = SentenceTransformerEncoderWrapper(sentence_transformer(model_dir, pooling, device, precision))
    seconds, scores = {}, {}
    for name in tasks:
        spec = load_registry().get(name)
        task = build_task(spec, Path(data_dir), in_memory=False)
        print(f"{name}: {task.metadata.dataset['path']}", file=sys.stderr)
        t = time.perf_counter()
        # Loaded under a cache keyed on the mirror's content, as cmteb loads it: with `datasets`' own
        # keying, a sample mirror of the same repo read earlier on this machine was served instead.
        with warnings.catch_warnings(), mirror_dataset_cache(mirror_fingerprint(Path(data_dir), spec)):
            warnings.simplefilter("ignore")
            result = mteb.evaluate(
                wrapper,
                task,
                cache=None,
                overwrite_strategy="always",
                show_progress_bar=False,
                encode_kwargs={"batch_size": batch, "show_progress_bar": False},
            ).task_results[0]
        seconds[name] = time.perf_counter() - t
        scores[name] = result.get_score()
    return {"seconds": seconds, "scores": scores, "wall": time.perf_counter() - started}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("model_dir", "pooling", "data_dir"):
        parser.add_argument(name)
    parser.add_argument("tasks", nargs="+")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", choices=DTYPES, default="fp32")
    parser.add_argument("--batch-size", type=int, default=32)
    a = parser.parse_args()
    print(json.dumps(main(a.model_dir, a.pooling, a.data_dir, a.tasks, a.device, a.precision, a.batch_size)))
