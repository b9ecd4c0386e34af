"""Tokenising a task's texts: the tokenizer's own call, on chunks in parallel threads.

Why threads: a fast tokenizer's Rust `encode_batch` releases the GIL, but with
`TOKENIZERS_PARALLELISM=false` (which servers often set to keep forked workers safe) it runs on one
core, and it runs before the first forward pass: on a GPU, 20,000 short passages took 2.1 s of
one core while the GPU waited. Chunks tokenised side by side by the same call give the same ids.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from cmteb.models.speed.truncation import cut_rule, prefix_chars

#: The fewest texts per chunk: each call has a fixed cost (16 long passages take ~1 ms, well above it).
MIN_CHUNK = 16


def chunk_size(count: int, cores: int) -> int:
    """Texts per chunk: about four chunks per core, so that 600 long passages spread over 16 cores as
    well as 20,000 short ones do (chunks of a fixed 1,024 texts left such a call on one core)."""
    return max(MIN_CHUNK, -(-count // (4 * cores)))


def usable_cores() -> int:
    """The CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def tokenize(
    tokenizer: Any, texts: Sequence[str], max_length: int, pairs: Sequence[str] | None = None
) -> dict[str, list[list[int]]]:
    """Token ids of `texts` (each with its partner in `pairs` for a cross-encoder), unpadded and truncated
    to `max_length`: what `tokenizer(texts, pairs, truncation=True, max_length=max_length)` returns (for
    single texts its `input_ids` alone: `batching.pad_batch` makes the rest).

    A text longer than `prefix_chars(max_length)` is tokenised from its prefix when the tokenizer has a
    cut rule (`truncation.py`), and again in full when the prefix's ids cannot be proven the same."""
    limit = prefix_chars(max_length)
    rule = cut_rule(tokenizer) if pairs is None and any(len(text) > limit for text in texts) else None
    if rule is None:
        return _in_threads(tokenizer, texts, max_length, pairs)
    prefixes = [text[:limit] for text in texts]
    redo: list[int] = []  # appended from the chunks' threads (list.append is atomic)

    def check(start: int, encoding: Any) -> None:
        for row, prefix in enumerate(prefixes[start : start + len(encoding["input_ids"])]):
            if len(texts[start + row]) > limit and not rule.keeps_whole_words(encoding, row, prefix, max_length):
                redo.append(start + row)

    encoded = _in_threads(tokenizer, prefixes, max_length, None, check)
    if redo:
        whole = _in_threads(tokenizer, [texts[i] for i in redo], max_length, None)
        for key, rows in encoded.items():
            for index, row in zip(redo, whole[key], strict=True):
                rows[index] = row
    return encoded


def _in_threads(
    tokenizer: Any,
    texts: Sequence[str],
    max_length: int,
    pairs: Sequence[str] | None,
    inspect: Callable[[int, Any], None] | None = None,
) -> dict[str, list[list[int]]]:
    """One truncating tokenizer call per chunk, side by side; `inspect(start, encoding)` sees each chunk's
    `BatchEncoding` on its thread."""
    cores = usable_cores()
    size = chunk_size(len(texts), cores)

    # Single texts: their ids alone (a mask of ones and token types of one segment, which `pad_batch` makes):
    # a third of the Python lists, to hold in memory and hand to worker processes.
    ids_only = {} if pairs is not None else {"return_attention_mask": False, "return_token_type_ids": False}

    def call(start: int) -> dict[str, list[list[int]]]:
        second = None if pairs is None else list(pairs[start : start + size])
        chunk = list(texts[start : start + size])
        encoding = tokenizer(chunk, second, padding=False, truncation=True, max_length=max_length, **ids_only)
        if inspect is not None:
            inspect(start, encoding)
        return dict(encoding)

    starts = range(0, len(texts), size)
    threads = min(cores, len(starts)) if getattr(tokenizer, "is_fast", False) else 0
    if threads <= 1:  # a slow, pure-Python tokenizer gains nothing from threads: it runs in this thread alone
        parts = [call(start) for start in starts]
    else:
        # A first call of one text on this thread sets the backend's truncation settings; the threads then
        # only read them, and every chunk runs side by side (no chunk waits for a first one).
        tokenizer(list(texts[:1]), None if pairs is None else list(pairs[:1]), truncation=True, max_length=max_length)
        with ThreadPoolExecutor(threads, thread_name_prefix="cmteb-tokenize") as pool:
            parts = list(pool.map(call, starts))
    return {key: [row for part in parts for row in part[key]] for key in parts[0]}
