"""What a worker holds: its own replica of a model core, loaded on its device, that runs shards."""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from cmteb.models.families import ModelRecipe
from cmteb.models.options import LoadOptions
from cmteb.models.sources import ModelSource


@dataclass(frozen=True)
class ReplicaSpec:
    """How to load the run's core in a worker: the resolved source, recipe and options of the parent's core."""

    kind: str  # "encoder" or "reranker"
    source: ModelSource
    options: LoadOptions
    recipe: ModelRecipe
    normalize: bool = False  # reranker: scores through a sigmoid
    cutoff_layer: int | None = None  # the layerwise reranker's scoring layer

    def on(self, device: str) -> ReplicaSpec:
        """The same replica on `device`."""
        return replace(self, options=replace(self.options, device=device))


def load_replica(spec: ReplicaSpec, threads: int | None = None) -> Any:
    """Load the core `spec` names (torch threads capped at `threads`, so CPU workers share the cores)."""
    import torch
    import transformers

    # A worker's console is the run's: no load bars from each replica; failures come back as messages.
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    if threads is not None:
        torch.set_num_threads(max(1, threads))
    if spec.kind == "encoder":
        from cmteb.models.encoder import BGEEncoder

        return BGEEncoder.load(spec.source, recipe=spec.recipe, **vars(spec.options))
    from cmteb.models.reranker import load_reranker

    options = vars(spec.options)
    return load_reranker(spec.source, recipe=spec.recipe, normalize=spec.normalize, cutoff=spec.cutoff_layer, **options)


def run_shard(core: Any, encoded: dict[str, list[Any]]) -> tuple[np.ndarray, dict[str, float]]:
    """One shard's outputs (embeddings or scores, in the shard's order) and the work it took."""
    before = core.stats.as_dict()
    started = time.perf_counter()
    out = core.run_local(encoded)
    work = {k: v - before[k] for k, v in core.stats.as_dict().items()}
    return out, {**work, "seconds": time.perf_counter() - started}


def worker_name(device: str) -> str:
    """Where a worker runs, as the run record says it: host, process and device."""
    return f"{socket.gethostname()}/pid {os.getpid()}/{device}"
