"""Task data for a run: loaded and checked before any weights are read, beside the weights where both are local."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from cmteb.errors import warn
from cmteb.hub import HubUnreachable, missing_data, offline_unless_reachable
from cmteb.runner.config import RunConfig
from cmteb.runner.progress import RunProgress
from cmteb.runner.systems.base import visible_workers
from cmteb.tasks.build import build_task, load_task_data
from cmteb.tasks.mirror import mirror_dataset_cache
from cmteb.tasks.qrel_gaps import QrelGaps
from cmteb.tasks.registry import TaskSpec

T = TypeVar("T")


class TaskLoader:
    """Fresh mteb task objects with their data, as the run's settings ask (mirror, subsample, items).

    `preload` loads and checks the data of the tasks a run will evaluate before any model is loaded,
    so a missing or broken copy stops the run within seconds; each preloaded object serves its
    task's first evaluation. `datasets` keeps the data memory-mapped, so holding them costs little.
    """

    def __init__(self, config: RunConfig, fingerprints: dict[str, str | None]) -> None:
        self.config = config
        self.evaluated: list[Any] = []  # the task objects evaluated, in order (the system reads their items)
        self.fingerprints = fingerprints
        self.unknown_qrels: dict[str, QrelGaps] = {}
        self.ready: dict[str, Any] = {}
        self._loading = threading.Condition()  # notified as each task's data comes in, and at the end
        self._loading_over = False

    def preload(self, specs: list[TaskSpec], progress: RunProgress) -> None:
        """Load and check the data of `specs` now (see the class docstring)."""
        try:
            self._preload(specs, progress)
        finally:
            with self._loading:
                self._loading_over = True
                self._loading.notify_all()

    def loaded(self, name: str) -> Any:
        """`name`'s preloaded task once its data is in; None if preloading ended without it."""
        with self._loading:
            self._loading.wait_for(lambda: name in self.ready or self._loading_over)
            return self.ready.get(name)

    def _preload(self, specs: list[TaskSpec], progress: RunProgress) -> None:
        if specs and self.config.data_dir is None:  # hub data: cached data must not wait on retries
            offline_unless_reachable(specs[0].repo, specs[0].revision)
        missing: list[TaskSpec] = []  # every task is tried: one message names all data to fetch
        for k, spec in enumerate(specs, start=1):
            progress.loading_data(k, len(specs), spec.name)
            try:
                with mirror_dataset_cache(self.fingerprints[spec.name]):
                    task = self._load(spec)
                with self._loading:
                    self.ready[spec.name] = task
                    self._loading.notify_all()
            except HubUnreachable:
                missing.append(spec)
        if missing:
            raise missing_data([s.name for s in missing], [s.repo for s in missing])

    def __call__(self, spec: TaskSpec) -> Any:
        task = self.ready.pop(spec.name, None)
        if task is None:
            task = self._load(spec)
        self.evaluated.append(task)
        return task

    def fresh(self, spec: TaskSpec) -> Any:
        """A new task object with its data, for another evaluation of a task already evaluated (its items are
        not the result's, so it is not listed in `evaluated`)."""
        return self._build(spec)[0]

    def _build(self, spec: TaskSpec) -> tuple[Any, QrelGaps]:
        config = self.config
        task = build_task(
            spec,
            config.data_dir,
            capture_items=True,
            subsample=config.subsample,
            subsample_corpus=config.subsample_corpus,
        )
        return task, load_task_data(task, spec, config.data_dir)

    def _load(self, spec: TaskSpec) -> Any:
        task, gaps = self._build(spec)
        for line in gaps.warnings(spec.name):
            warn(line)
        self.unknown_qrels[spec.name] = gaps
        return task


def while_loading_data(
    config: RunConfig, load: TaskLoader, pending: list[TaskSpec], progress: RunProgress, load_models: Callable[[], T]
) -> T:
    """`load_models()` in a thread while the pending tasks' data loads here: reading weights and parquet files
    overlap (both release the GIL for their reads and copies), so start-up takes the longer of the two, not
    their sum. Only where neither side can fail for a missing download: local mirrors (the plan found every
    file) and local models in this process; hub data is found before any weights are read, and worker pools
    (processes, Ray, which wants the main thread) start after the data."""
    sources = [c.source for c in (config.embedder, config.reranker) if c is not None]
    pooled = visible_workers(config).pooled  # several GPUs, --devices or --ray
    side_by_side = config.data_dir is not None and not pooled and all(s.local_dir for s in sources)
    if not side_by_side:
        load.preload(pending, progress)
        return load_models()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="cmteb-load-models") as pool:
        models = pool.submit(load_models)
        try:
            load.preload(pending, progress)  # a data error is raised once the models are loaded: nothing is written
        except BaseException:
            stop_encoding_ahead(models)
            raise
        return models.result()


def stop_encoding_ahead(models: Future) -> None:
    """Once the models are loaded, stop the encoding ahead an embedder started (the run stops on an error)."""
    try:
        loaded = models.result()
    except BaseException:  # the data error is the one reported
        return
    for model in loaded if isinstance(loaded, tuple) else (loaded,):
        if getattr(model, "prefetcher", None) is not None:
            model.prefetcher.close()
