"""`python bench/in_memory.py`: mteb's evaluation of the four task types whose evaluators read lazy
`datasets` columns row by row, plain and with cmteb's columns in memory (`cmteb.columns`,
`cmteb.mteb_hooks.IN_MEMORY_MIXINS`), on the same synthetic data with mteb's hash-seeded random
encoder (no model time). Prints seconds and whether every score came out equal; asserts nothing
about time.

- Classification (Waimai's task): 8,000 training and 2,000 test texts, 2 labels, 10 experiments.
- Legacy clustering (CLSClusteringS2S's task): 10 sets of 10,000 texts, 13 labels.
- Pair classification (Ocnli's task): 10,000 pairs.
- STS (ATEC's task): 20,000 pairs in each of its two splits.
"""

from __future__ import annotations

import os

os.environ.setdefault("TQDM_DISABLE", "1")  # the random encoder's per-batch bars

import logging
import time
import warnings

import mteb
from datasets import Dataset, DatasetDict

from cmteb.mteb_hooks import IN_MEMORY_MIXINS


def texts(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i}号评论" for i in range(n)]


def classification_data() -> DatasetDict:
    return DatasetDict(
        {
            split: Dataset.from_dict({"text": texts(split, n), "label": [i % 2 for i in range(n)]})
            for split, n in (("train", 8000), ("test", 2000))
        }
    )


def clustering_data() -> DatasetDict:
    sets = {"sentences": [texts(f"s{k}-", 10000) for k in range(10)], "labels": [[i % 13 for i in range(10000)]] * 10}
    return DatasetDict({"test": Dataset.from_dict(sets)})


def pairs_data() -> DatasetDict:
    pairs = {"sentence1": texts("a", 10000), "sentence2": texts("b", 10000), "labels": [i % 2 for i in range(10000)]}
    return DatasetDict({"validation": Dataset.from_dict(pairs)})


def sts_data() -> DatasetDict:
    pairs = {"sentence1": texts("a", 20000), "sentence2": texts("b", 20000), "score": [i % 6 for i in range(20000)]}
    return DatasetDict({split: Dataset.from_dict(pairs) for split in ("validation", "test")})


CASES = {
    "Waimai": ("Classification", classification_data),
    "CLSClusteringS2S": ("Clustering", clustering_data),
    "Ocnli": ("PairClassification", pairs_data),
    "ATEC": ("STS", sts_data),
}


def evaluate(name: str, in_memory: bool) -> tuple[float, dict]:
    """Seconds and scores of one evaluation of task `name` on its synthetic data."""
    kind, data = CASES[name]
    cls = type(mteb.get_task(name))
    task = type(name, (IN_MEMORY_MIXINS[kind], cls), {})() if in_memory else cls()
    task.dataset, task.data_loaded = data(), True
    model = mteb.get_model("mteb/baseline-random-encoder")
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = mteb.evaluate(model, task, cache=None, overwrite_strategy="always", show_progress_bar=False)
    return time.perf_counter() - started, result.task_results[0].scores


if __name__ == "__main__":
    logging.getLogger("mteb").setLevel(logging.ERROR)  # notices that a legacy task has a newer version
    warnings.simplefilter("ignore")
    for name in CASES:
        plain_seconds, plain = evaluate(name, in_memory=False)
        ours_seconds, ours = evaluate(name, in_memory=True)
        print(
            f"{name:18} plain mteb {plain_seconds:6.2f} s   columns in memory {ours_seconds:6.2f} s"
            f"   same scores: {ours == plain}"
        )
