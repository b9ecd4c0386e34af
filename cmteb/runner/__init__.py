"""A run, in phases: resolve the settings once (config), plan the tasks and what is already done,
load the model cores, evaluate each task with mteb, record results; plus the embedding cache and the
result store that let a run skip work already done."""

from typing import Any

__all__ = ["RunSummary", "TaskOutcome", "run"]


def __getattr__(name: str) -> Any:
    # Imported on first use: `cmteb.runner.config` and friends stay importable without torch and mteb.
    if name in __all__:
        from cmteb.runner import execute

        return getattr(execute, name)
    raise AttributeError(name)
