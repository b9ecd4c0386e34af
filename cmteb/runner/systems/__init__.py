"""Load what a run evaluates and present it to the task loop as one `System`: one module per kind of run
(`cmteb.kinds.RunKind`), behind one table.

- `embedder`: an embedding model on any task;
- `reranker`: a reranker alone on the Reranking tasks, scoring each query's given candidates;
- `two_stage`: on Retrieval tasks, the embedder retrieves and the reranker re-ranks its top k;
- `lexical`: the `bm25` baseline.

`loader` loads and checks the task data before any weights are read; `cores` loads the model cores (in this
process, or as worker pools) and presents them to mteb; `base` holds what every kind shares.
"""

from __future__ import annotations

from collections.abc import Callable

from cmteb.kinds import RunKind
from cmteb.runner.plan import Plan
from cmteb.runner.progress import RunProgress
from cmteb.runner.systems import embedder, lexical, reranker, two_stage
from cmteb.runner.systems.base import System
from cmteb.runner.systems.loader import TaskLoader
from cmteb.tasks.build import build_task
from cmteb.tasks.registry import TaskSpec

#: How each kind of run is loaded: `build(config, loader, pending tasks, progress) -> System`.
SYSTEMS: dict[RunKind, Callable[..., System]] = {
    RunKind.EMBEDDER: embedder.build,
    RunKind.RERANKER: reranker.build,
    RunKind.TWO_STAGE: two_stage.build,
    RunKind.LEXICAL: lexical.build,
}


def load_system(plan: Plan, progress: RunProgress, pending: list[TaskSpec]) -> System:
    """Define every task and load the data of the `pending` ones, then load the run's models and wire them to
    mteb's evaluation, as the run's kind does it."""
    config = plan.config
    for spec in config.specs:  # every task is defined (mteb class, mirror, layout) before weights are read
        build_task(spec, config.data_dir)
    return SYSTEMS[config.kind](config, TaskLoader(config, plan.fingerprints), pending, progress)


__all__ = ["SYSTEMS", "System", "load_system"]
