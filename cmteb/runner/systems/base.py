"""What every kind of run shares: the `System` the task loop sees, and what the run record says of the models."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cmteb.runner.arithmetic import arithmetic_record
from cmteb.runner.config import RunConfig
from cmteb.runner.prefetch import Prefetcher
from cmteb.runner.probe import probe_header
from cmteb.tasks.qrel_gaps import QrelGaps
from cmteb.tasks.registry import TaskSpec
from cmteb.workers.options import WorkerOptions


@dataclass
class System:
    """What a run evaluates, as the task loop sees it."""

    header: dict[str, Any]  # the run record's model section
    evaluate: Callable[[TaskSpec], tuple[Any, dict[str, Any]]]  # -> (TaskResult, extra record fields)
    counted: Callable[[], int]  # texts or pairs processed so far
    stats: Callable[[], dict[str, Any]]  # the model cores' batch counters, for the run record
    meta: Any = None  # ModelMeta for model_meta.json
    embedding_dim: int | None = None
    tasks_evaluated: list[Any] = field(default_factory=list)  # task objects of the current task, for their items
    unknown_qrels: dict[str, QrelGaps] = field(default_factory=dict)  # per task, qrels naming what the split lacks
    cores: list[Any] = field(default_factory=list)  # the model cores, whose worker pools the run ends
    prefetcher: Prefetcher | None = None  # encodes ahead of evaluation, when the run is pipelined

    def placement(self) -> dict[str, Any]:
        """Where each shard ran since the last call, and what was redone, per pooled core (none: empty)."""
        logs = {core.KIND: core.pool.log.take() for core in self.cores if core.pool is not None}
        return {"workers": logs} if logs else {}

    def close(self) -> None:
        """Stop encoding ahead, then the worker pools."""
        if self.prefetcher is not None:
            self.prefetcher.close()
        for core in self.cores:
            if core.pool is not None:
                core.pool.close()


def core_header(core: Any) -> dict[str, Any]:
    """What the run record says of a loaded core."""
    header = {"model": core.source.name, "model_path": core.source.path, "revision": core.source.revision}
    return {**header, "weights_not_matched": core.weights}  # listed whether or not the run was allowed


def workers_header(cores: list[Any]) -> dict[str, Any]:
    """What the run record says of where the model work ran: the worker pools, else the forward passes this
    process ran at once (speed only, never a score)."""
    pools = {core.KIND: core.pool.workers for core in cores if core.pool is not None}
    streams = {core.KIND: core.streams for core in cores if core.pool is None}
    return {"workers": pools} if pools else {"streams": streams}


def visible_workers(config: RunConfig) -> WorkerOptions:
    """The run's worker options, with the default made concrete: every visible GPU when there are several."""
    if config.workers.pooled or config.load.device != "cuda":
        return config.workers
    import torch

    count = torch.cuda.device_count()
    return WorkerOptions(devices=tuple(f"cuda:{k}" for k in range(count))) if count > 1 else config.workers


def recipes_header(config: RunConfig) -> dict[str, Any]:
    """What the run record says of how each model runs: its family's recipe (`models/families.py`)."""
    recipes = {}
    if config.embedder is not None and config.embedder.recipe is not None:
        recipes["model_recipe"] = config.embedder.recipe.as_record()
    if config.reranker is not None:
        recipes["reranker_recipe"] = config.reranker.recipe.as_record()
    return recipes


def run_header(config: RunConfig, cores: list[Any]) -> dict[str, Any]:
    """The run record's header of a run of model cores: its settings, where the model work ran, the
    arithmetic, the probe's choice, each model's recipe and the run's kind."""
    header = {**config.settings(), "device": config.load.device, **config.identity(), **workers_header(cores)}
    header["pipeline"] = config.pipeline  # encoding ran ahead of evaluation: speed only, never a score
    header |= {"arithmetic": arithmetic_record(config.load.device or "cpu"), "probe": probe_header(cores)}
    return header | recipes_header(config) | {"kind": config.kind.value}


def planned_instructions(embedder: Any, spec: TaskSpec) -> dict[str, Any] | None:
    """What the run record keeps of a task's instructions (None: none at all)."""
    planned = embedder.instructions.get(spec.name)
    return planned.as_record() if planned is not None and planned.source != "none" else None
