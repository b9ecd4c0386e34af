"""The embedding probe of each evaluated task (`results/probe.py` says what it is for).

While a task is evaluated, `ProbeChoice` sees every text (or query/passage pair) the model is asked for and
keeps the PROBE_PER_TASK with the smallest content keys: the same data always gives the same choice, and
nothing is kept of the rest. After the evaluation they are computed again, each in a forward pass of its own
(its outputs then depend on the model and the arithmetic alone, never on what shared its batch; one call per
input also makes one pass per input through a worker pool), with counters of their own so the run's work
figures stay the task's.
"""

from __future__ import annotations

import hashlib
import heapq
import threading
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from cmteb.models.batching import BatchStats
from cmteb.models.cache import text_key
from cmteb.results.probe import PROBE_PER_TASK, drift_threshold, project
from cmteb.workers.dispatch import ShardLog


def pair_key(query: str, passage: str) -> bytes:
    """The content key of a (query, passage) pair."""
    return hashlib.blake2b(query.encode("utf-8") + b"\0" + passage.encode("utf-8"), digest_size=16).digest()


class ProbeChoice:
    """The PROBE_PER_TASK inputs with the smallest keys among those offered since the last `take`."""

    def __init__(self, size: int = PROBE_PER_TASK) -> None:
        self.size = size
        self._chosen: dict[bytes, Any] = {}
        self._lock = threading.Lock()  # encoding ahead offers from another thread

    def offer(self, items: Iterable[tuple[bytes, Any]]) -> None:
        """Consider `(key, input)` pairs."""
        smallest = heapq.nsmallest(self.size, items, key=lambda pair: pair[0])
        with self._lock:
            merged = {**self._chosen, **dict(smallest)}
            self._chosen = {k: merged[k] for k in sorted(merged)[: self.size]}

    def offer_texts(self, texts: Sequence[str]) -> None:
        """Consider texts, keyed as the embedding cache keys them."""
        self.offer((text_key(t), t) for t in texts)

    def offer_pairs(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Consider (query, passage) pairs."""
        self.offer((pair_key(q, p), (q, p)) for q, p in pairs)

    def take(self) -> dict[bytes, Any]:
        """The chosen inputs by key, in key order; the choice starts again."""
        with self._lock:
            chosen, self._chosen = self._chosen, {}
        return chosen


def embedding_rows(encoder: Any, chosen: dict[bytes, str]) -> list[dict[str, Any]]:
    """The probe rows of chosen texts: each embedded alone, projected as `results/probe.py` keeps them."""
    if not chosen:
        return []
    stats, log = BatchStats(), ShardLog()  # the probe's work, kept apart from the task's
    vectors = project(np.concatenate([encoder.encode([text], stats=stats, log=log) for text in chosen.values()]))
    return [{"kind": "embedding", "key": key.hex(), "values": row} for key, row in zip(chosen, vectors, strict=True)]


def score_rows(reranker: Any, chosen: dict[bytes, tuple[str, str]]) -> list[dict[str, Any]]:
    """The probe rows of chosen pairs: each scored alone."""
    if not chosen:
        return []
    stats, log = BatchStats(), ShardLog()
    scores = np.concatenate([reranker.score([pair], stats=stats, log=log) for pair in chosen.values()])
    return [{"kind": "score", "key": key.hex(), "values": [s]} for key, s in zip(chosen, scores, strict=True)]


def network_shape(config: Any) -> tuple[int, int]:
    """A network's depth and longest reduction (its feed-forward width), from its transformers config."""
    layers = getattr(config, "num_hidden_layers", None) or getattr(config, "n_layer", None) or 1
    hidden = getattr(config, "hidden_size", None) or getattr(config, "d_model", None) or 1
    reduction = getattr(config, "intermediate_size", None) or 4 * hidden
    return int(layers), int(max(reduction, hidden))


def probe_header(cores: Sequence[Any]) -> dict[str, Any]:
    """What the run record says of the probe: per core, the drift fp32 arithmetic alone can give (the largest
    over the run's networks is what `compare` allows)."""
    thresholds = {core.KIND: drift_threshold(*network_shape(core.config)) for core in cores}
    return {"per_task": PROBE_PER_TASK, "threshold": max(thresholds.values()), "thresholds": thresholds}
