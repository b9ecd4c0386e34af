"""Length-sorted batching shared by the encoder and the reranker.

Inputs are tokenised once without padding, sorted longest first (so each batch pads only to
its own longest input, and the first batch shows at once whether the largest one fits in
memory), padded per batch, and the caller scatters outputs back to input order by index.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


@dataclass
class BatchStats:
    """Counters of the work done, for the run record and benchmarks."""

    texts: int = 0
    tokens: int = 0
    padded_tokens: int = 0
    batches: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, float]:
        """The counters as a plain dict."""
        return dict(vars(self))


def length_sorted_batches(
    tokenizer: Any,
    encoded: Mapping[str, Sequence[Sequence[int]]],
    batch_size: int,
    device: str,
    stats: BatchStats,
) -> Iterator[tuple[np.ndarray, dict[str, torch.Tensor]]]:
    """Yield `(indices, padded tensors)` batches of `encoded`, longest inputs first."""
    lengths = np.array([len(ids) for ids in encoded["input_ids"]])
    order = np.argsort(-lengths, kind="stable")
    keys = list(encoded.keys())
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        features = {k: [encoded[k][i] for i in idx] for k in keys}
        batch = tokenizer.pad(features, padding=True, return_tensors="pt")
        stats.batches += 1
        stats.tokens += int(lengths[idx].sum())
        stats.padded_tokens += int(batch["input_ids"].numel())
        yield idx, {k: v.to(device) for k, v in batch.items()}
