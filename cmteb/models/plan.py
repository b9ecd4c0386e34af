"""The batch plan: which inputs travel together, decided by their token lengths alone.

Kept apart from the forward loop (and from torch) so the process that shards a stream over
workers plans the very batches a single process would run.
"""

from __future__ import annotations

import numpy as np


def longest_first(lengths: np.ndarray) -> np.ndarray:
    """Input positions, longest first; equal lengths keep their input order."""
    return np.argsort(-lengths, kind="stable")


def batch_count(size: int, max_tokens: int | None, longest: int) -> int:
    """How many inputs the next batch takes: `size`, fewer when `max_tokens` caps its padded tokens (its
    first input is its longest, so the batch pads to `longest`)."""
    if max_tokens is None:
        return size
    return max(1, min(size, max_tokens // max(1, longest)))


def plan_batches(lengths: np.ndarray, batch_size: int, max_tokens: int | None) -> list[np.ndarray]:
    """The batches of a run over inputs of these token `lengths`, as input positions, longest first."""
    order = longest_first(lengths)
    batches, start = [], 0
    while start < len(order):
        count = batch_count(batch_size, max_tokens, int(lengths[order[start]]))
        batches.append(order[start : start + count])
        start += count
    return batches
