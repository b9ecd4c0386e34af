"""The run record's shape (`<result folder>/cmteb/run.json`), typed: `RunRecord` and its `TaskEntry`s.

JSON on disk, so typed dictionaries: what a reader gets from `files.read_run_record` is checked by the type
checker against these keys, and `runner/record.py` builds entries through `task_entry`, never as loose dicts.
Every key is optional (`total=False`): records written by earlier versions lack the newer ones.
"""

from __future__ import annotations

from typing import Any, TypedDict


class TaskEntry(TypedDict, total=False):
    """One task's entry: its evaluation key (what resume compares), this run's data, the checks, the costs."""

    # The evaluation key (`runner/plan.py: evaluation_key`).
    protocol: str
    task_spec: str
    dataset_revision: str
    data_fingerprint: str | None
    settings: dict[str, Any]
    subsample: int | None
    subsample_items: int | None
    instructions: list[str | None] | None
    # Where the data came from in this run.
    dataset_repo: str
    data_dir: str | None
    data_source: str  # hub, local or samples
    mirror_revision: str | None
    # What the evaluation found and produced.
    unknown_qrel_documents: int
    unknown_qrel_queries: int
    instructions_used: dict[str, Any] | None
    first_stage_score: float | None  # two-stage runs: the embedder's own score
    noise: dict[str, Any]  # measured float noise (`runner/noise.py`)
    checksums: dict[str, str]  # file name -> sha256 of the task's files
    rewriting_since: str  # set while the task's files are replaced (`files.REWRITING`)
    # What it cost and where it ran (speed only).
    seconds: float
    model_seconds: float
    evaluated_seconds: float | None  # a reused result: the seconds its evaluation took
    texts_encoded: int
    blas_threads: int | None
    workers: dict[str, Any]
    reused_result: str  # the result-store key a reused result came from
    finished: str


class RunRecord(TypedDict, total=False):
    """A result folder's run record: the run's header (model, revision, settings, arithmetic...) and its tasks.
    `damaged` is set, by the reader only, to the path of a record that could not be read."""

    tasks: dict[str, TaskEntry]
    damaged: str
    kind: str
    model: str
    model_path: str
    model_argument: str
    revision: str | None
    variant: dict[str, Any]
    packages: dict[str, str]
    arithmetic: dict[str, Any]
    probe: dict[str, Any]
