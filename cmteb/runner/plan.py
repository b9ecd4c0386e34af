"""Plan a run: check the data of every task, fingerprint it, and look up what the result store holds.

Nothing here loads a model or a dataset: a missing mirror, a mirror at another revision or a task
that cannot be defined stops the run before any weights are read.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from cmteb.kinds import RunKind
from cmteb.runner.config import RunConfig
from cmteb.runner.store import ResultStore, StoredResult
from cmteb.tasks.mirror import check_mirrors, mirror_fingerprint, mirror_revisions
from cmteb.tasks.registry import TaskSpec
from cmteb.tasks.types import task_type


def subsample_items(subsample: int | None, type_name: str) -> int | None:
    """Items a task of `type_name` keeps under `--subsample` (its type may keep more: `TaskType.quick_scale`)."""
    return None if subsample is None else subsample * task_type(type_name).quick_scale


@dataclass(frozen=True)
class Plan:
    """What the run will do: per task its data fingerprint, what to record of this run, its store key."""

    config: RunConfig
    fingerprints: dict[str, str | None]  # content hash of a task's local mirror (None on the hub)
    this_run: dict[str, dict[str, Any]]  # per task, what a reused result records of this run
    store: ResultStore | None  # None: no stored results are used
    keys: dict[str, str]  # per task, its key in the store

    def stored(self, name: str) -> StoredResult | None:
        """The stored result of task `name`, if the store holds one for exactly this evaluation."""
        return self.store.get(self.keys[name]) if self.store is not None else None

    def all_stored(self) -> bool:
        """Whether the store answers every task (then neither the model nor the data is loaded)."""
        return self.store is not None and all(self.stored(s.name) is not None for s in self.config.specs)

    def evaluation_key(self, name: str) -> dict[str, Any]:
        """The key of task `name`'s evaluation (`evaluation_key`)."""
        return evaluation_key(self.config, self.config.protocol.get(name), self.fingerprints[name])


def evaluation_key(config: RunConfig, spec: TaskSpec, fingerprint: str | None) -> dict[str, Any]:
    """Everything a task's result depends on besides the model: the protocol, the task's definition and data,
    the settings, the subsample and the instructions. One key for both ways a result is reused: resume keeps a
    result whose run-record entry holds this key, and the result store files a result under its hash with the
    model's name and revision."""
    definition = json.dumps(asdict(spec), sort_keys=True, default=str).encode("utf-8")
    return {
        "protocol": config.protocol.name,
        "task_spec": hashlib.sha256(definition).hexdigest()[:16],
        "dataset_revision": spec.revision,
        "data_fingerprint": fingerprint,
        "settings": config.settings(),
        "subsample": config.subsample,
        "subsample_items": subsample_items(config.subsample, spec.type),
        "instructions": config.task_instructions(spec.name),
    }


def _store(config: RunConfig) -> ResultStore | None:
    """The result store of this system and settings: embedding runs with a known revision, cache on."""
    if (
        config.kind not in (RunKind.EMBEDDER, RunKind.LEXICAL)
        or not config.use_cache
        or config.overwrite
        or config.system_revision is None
    ):
        return None
    system = {**config.settings(), "model": config.system_name, "revision": config.system_revision}
    return ResultStore(config.cache_dir, system)


def make_plan(config: RunConfig) -> Plan:
    """Check every task's data and find what is already stored; fail before any model is loaded."""
    check_mirrors(config.data_dir, config.specs)
    revisions = mirror_revisions(config.data_dir, config.specs, allow_mismatch=config.allow_revision_mismatch)
    # Hashed in threads (hashlib releases the GIL): a first run over a full-size mirror reads gigabytes.
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        hashes = pool.map(lambda spec: mirror_fingerprint(config.data_dir, spec, config.fingerprint_memo), config.specs)
        fingerprints = {spec.name: fingerprint for spec, fingerprint in zip(config.specs, hashes, strict=True)}
    this_run = {
        spec.name: {
            "data_dir": str(config.data_dir) if config.data_dir else None,
            "data_source": config.data_source,
            "mirror_revision": revisions.get(spec.name),
        }
        for spec in config.specs
    }
    store = _store(config)
    keys = {}
    if store is not None:
        keys = {s.name: store.key(evaluation_key(config, s, fingerprints[s.name])) for s in config.specs}
    return Plan(config, fingerprints, this_run, store, keys)
