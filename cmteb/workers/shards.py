"""Cutting a length-sorted stream of tokenised inputs into shards for several workers.

A shard is a run of whole batches of the single-process batch plan (`plan_batches`), so a worker
that batches its shard forms exactly the batches one process would have formed: the embeddings
then depend on where a shard ran only through the device's own float behaviour.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cmteb.models.plan import plan_batches

#: Batches per shard at most: large enough that a worker seldom waits for its next shard, small
#: enough that the stream spreads over every worker and a lost shard costs little to redo.
MAX_BATCHES_PER_SHARD = 16


@dataclass(frozen=True)
class Shard:
    """Inputs `indices` (positions in the stream) and their token ids, as one worker receives them."""

    number: int
    indices: np.ndarray
    encoded: dict[str, list[Any]]


def plan_shards(
    encoded: Mapping[str, Sequence[Sequence[int]]],
    batch_size: int,
    max_tokens: int | None,
    workers: int,
) -> list[Shard]:
    """Shards of `encoded` for `workers` workers: about four per worker (so a slow or lost worker's share
    moves to the others), each a run of whole batches, longest inputs first."""
    lengths = np.fromiter(map(len, encoded["input_ids"]), dtype=np.int64, count=len(encoded["input_ids"]))
    batches = plan_batches(lengths, batch_size, max_tokens)
    per_shard = int(np.clip(-(-len(batches) // (4 * max(1, workers))), 1, MAX_BATCHES_PER_SHARD))
    shards = []
    for number, first in enumerate(range(0, len(batches), per_shard)):
        indices = np.concatenate(batches[first : first + per_shard])
        shards.append(Shard(number, indices, {k: [rows[i] for i in indices] for k, rows in encoded.items()}))
    return shards
