"""The batch plan: which inputs travel together, decided by their token lengths alone.

Kept apart from the forward loop (and from torch) so the process that shards a stream over
workers plans the very batches a single process would run.
"""

from __future__ import annotations

import numpy as np

from cmteb.defaults import FILL_ROWS


def longest_first(lengths: np.ndarray) -> np.ndarray:
    """Input positions, longest first; equal lengths keep their input order."""
    return np.argsort(-lengths, kind="stable")


def batch_count(size: int, max_tokens: int | None, longest: int) -> int:
    """How many inputs the next batch takes (its first input is its longest, so it pads to `longest`):
    `size` without a token budget; with one, as many as fill `max_tokens` padded tokens, from one up to
    `FILL_ROWS` x `size`."""
    if max_tokens is None:
        return size
    return max(1, min(size * FILL_ROWS, max_tokens // max(1, longest)))


def plan_batches(lengths: np.ndarray, batch_size: int, max_tokens: int | None) -> list[np.ndarray]:
    """The batches of a run over inputs of these token `lengths`, as input positions, longest first."""
    order = longest_first(lengths)
    batches, start = [], 0
    while start < len(order):
        count = batch_count(batch_size, max_tokens, int(lengths[order[start]]))
        batches.append(order[start : start + count])
        start += count
    return batches
