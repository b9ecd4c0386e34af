"""A run, in phases: resolve the settings once (config), plan the tasks and what is already done,
load the model cores, evaluate each task with mteb, record results; plus the embedding cache and the
result store that let a run skip work already done."""

from cmteb.runner.execute import RunSummary, TaskOutcome, run

__all__ = ["RunSummary", "TaskOutcome", "run"]
