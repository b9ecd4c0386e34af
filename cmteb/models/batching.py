"""Length-sorted batching shared by the encoder and the reranker.

Inputs are tokenised once without padding, sorted longest first (so each batch pads only to
its own longest input, and the first batch shows at once whether the largest one fits in
memory), padded per batch, and the caller scatters outputs back to input order by index.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from cmteb.errors import CmtebError
from cmteb.models.plan import batch_count, longest_first

logger = logging.getLogger(__name__)


@dataclass
class BatchStats:
    """Counters of the work done, for the run record and benchmarks."""

    texts: int = 0
    tokens: int = 0
    padded_tokens: int = 0
    batches: int = 0
    seconds: float = 0.0

    def add(self, other: BatchStats) -> None:
        """Count `other`'s work here too."""
        for name, value in vars(other).items():
            setattr(self, name, getattr(self, name) + value)

    def as_dict(self) -> dict[str, float]:
        """The counters as a plain dict."""
        return dict(vars(self))


def _is_out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, torch.cuda.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()
    )


def pad_batch(tokenizer: Any, features: Mapping[str, Sequence[Sequence[int]]]) -> dict[str, torch.Tensor]:
    """Pad one batch of token id lists into int64 tensors, exactly as `tokenizer.pad(padding=True)` pads the
    tokenizer's full output. Columns the tokenizer would have returned but `features` leaves out (single
    texts are tokenised to their ids alone: `tokenize.py`) are made here: the attention mask from the
    lengths, token types of the first segment.

    Why not `tokenizer.pad`: it walks every item in Python and takes about 10x longer (28 ms against
    2.6 ms for 256 texts of ~50 tokens), which a GPU encoding such a batch in a few ms waits for.
    Here one numpy scatter per column fills a pre-padded array. Left-padding tokenizers pad left.
    """
    ids = features["input_ids"]
    lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
    width = int(lengths.max())
    positions = np.arange(width)[None, :]
    if getattr(tokenizer, "padding_side", "right") == "left":
        filled = positions >= width - lengths[:, None]
    else:
        filled = positions < lengths[:, None]
    type_pad = getattr(tokenizer, "pad_token_type_id", 0) or 0
    pad_values = {"input_ids": tokenizer.pad_token_id or 0, "token_type_ids": type_pad}
    batch = {}
    for key in _columns(tokenizer, features):
        if key == "attention_mask" and key not in features:
            batch[key] = torch.from_numpy(filled.astype(np.int64))
            continue
        array = np.full((len(ids), width), pad_values.get(key, 0), dtype=np.int64)
        if key in features:
            chained = itertools.chain.from_iterable(features[key])
            array[filled] = np.fromiter(chained, dtype=np.int64, count=int(lengths.sum()))
        else:  # token types of single texts: the first segment's
            array[filled] = 0
        batch[key] = torch.from_numpy(array)
    return batch


def _columns(tokenizer: Any, features: Mapping[str, Any]) -> list[str]:
    """The batch's columns in the tokenizer's order: those given, then the mask and token types it returns."""
    made = [k for k in getattr(tokenizer, "model_input_names", ()) if k in ("token_type_ids", "attention_mask")]
    return list(features) + [k for k in made if k not in features]


def to_device(batch: dict[str, torch.Tensor], device: str) -> dict[str, torch.Tensor]:
    """Move a padded batch to `device`; to a GPU as one array from pinned memory, without waiting for the copy.

    One array, not one per column: each operator called from Python releases the GIL and may wait up to
    the 5 ms switch interval to take it back while another thread runs Python (mteb's evaluation in a
    pipelined run), so a pass issues as few as it can (three here: pin, copy, split)."""
    if not device.startswith("cuda"):
        return batch
    stacked = torch.from_numpy(np.stack([column.numpy() for column in batch.values()]))
    on_device = stacked.pin_memory().to(device, non_blocking=True)
    return dict(zip(batch, on_device.unbind(0), strict=True))


def forward_in_batches(
    tokenizer: Any,
    encoded: Mapping[str, Sequence[Sequence[int]]],
    batch_size: int,
    device: str,
    stats: BatchStats,
    forward: Callable[[np.ndarray, dict[str, torch.Tensor]], None],
    on_batch: Callable[[int], None] | None = None,
    max_tokens: int | None = None,
    mask_padded_only: bool = False,
) -> None:
    """Call `forward(indices, padded tensors)` on length-sorted batches of `encoded`, longest first.

    A batch holds at most `batch_size` inputs and, with `max_tokens`, at most that many tokens
    once padded (inputs are sorted, so the first input of a batch is its longest): short inputs
    travel in large batches, long ones in small batches, at a steady cost per batch. Out of GPU
    memory, both limits are halved and the batch retried; at one input the run stops with a
    message saying what to change. With `mask_padded_only`, a batch without padding carries no
    attention mask (the host knows it from the lengths: see `masks.py`).
    """
    lengths = np.array([len(ids) for ids in encoded["input_ids"]])
    order = longest_first(lengths)
    keys = list(encoded.keys())
    start, size = 0, batch_size
    budget = max_tokens
    while start < len(order):
        count = batch_count(size, budget, int(lengths[order[start]]))  # as plan_batches plans it
        idx = order[start : start + count]
        features = {k: [encoded[k][i] for i in idx] for k in keys}
        padded_batch = pad_batch(tokenizer, features)
        if mask_padded_only and lengths[idx].min() == lengths[idx].max():  # (in any order the plan makes)
            padded_batch.pop("attention_mask", None)
        batch = to_device(padded_batch, device)
        try:
            forward(idx, batch)
        except (torch.cuda.OutOfMemoryError, RuntimeError) as exc:
            if not _is_out_of_memory(exc):
                raise
            del batch
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            if len(idx) == 1:
                raise CmtebError(
                    f"out of memory on a single input of {int(lengths[idx].max())} tokens: lower --max-length, "
                    "use --precision fp16/bf16, or a device with more memory"
                ) from exc
            size = max(1, len(idx) // 2)
            budget = None if budget is None else max(1, budget // 2)
            logger.warning("out of memory at batch size %d: retrying with %d", len(idx), size)
            continue
        stats.batches += 1
        stats.tokens += int(lengths[idx].sum())
        stats.padded_tokens += len(idx) * int(lengths[idx].max())
        start += len(idx)
        if on_batch is not None:
            on_batch(len(idx))
