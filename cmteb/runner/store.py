"""Evaluated task results kept beside the embedding cache, for reruns that change nothing.

A task's scores are a function of the protocol's task definition, the data (a content hash of the
mirror, or the pinned revision on the hub), the model (name, and revision or weights hash), every
setting that changes embeddings or scores, and the versions of cmteb, mteb and torch. When a run
asks for exactly that again, for instance into a fresh output folder, the stored result is copied
instead of loading the data and the model and evaluating again: mteb's evaluators are seeded, so
the copy equals a fresh evaluation (tests/test_result_store.py checks it). `--no-cache` bypasses it.

Layout: `<cache>/results/<key>/` holding the TaskResult JSON, its per-item parquet, the model's
`model_meta.json` and `entry.json` (the run-record entry, the score, and each file's sha256). An
entry is written to a temp folder and renamed into place, so a reader sees all of it or none; it is
used only when every file still has its recorded checksum and the result parses, otherwise it is
removed with a one-line note and the task is evaluated again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cmteb.errors import CmtebError, warn
from cmteb.io import umask_mode
from cmteb.results.files import CHECKSUMS, checksum_problem, file_checksums, package_versions
from cmteb.results.reader import parse_result_file

ENTRY = "entry.json"
#: Packages whose versions change scores: a new version never reuses an old result.
SCORING_PACKAGES = ("cmteb", "mteb", "torch", "transformers", "scikit-learn", "pytrec-eval-terrier")


@dataclass(frozen=True)
class StoredResult:
    """One stored task result: its folder and its recorded entry."""

    folder: Path
    entry: dict[str, Any]

    def file(self, name: str) -> Path:
        """A file of the stored result by name."""
        return self.folder / name


class ResultStore:
    """Task results keyed on everything that determines them (see the module docstring)."""

    def __init__(self, root: Path, system: dict[str, Any]) -> None:
        self.folder = Path(root) / "results"
        self.system = {**system, "versions": package_versions(SCORING_PACKAGES)}
        self._verified: dict[str, StoredResult] = {}  # an entry is immutable once in place: checked once a run
        self.failed = False  # the store could not be written: said once, then not tried again

    def key(self, evaluation: dict[str, Any]) -> str:
        """The key of one task's result under this system: the hash of its evaluation key
        (`plan.evaluation_key`) with the system's name, revision, settings and scoring packages."""
        fields = {"system": self.system, **evaluation}
        return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode("utf-8")).hexdigest()[:32]

    def get(self, key: str) -> StoredResult | None:
        """The stored result under `key`, or None; a damaged entry is removed (its task is evaluated again)."""
        if key in self._verified:
            return self._verified[key]
        folder = self.folder / key
        try:
            if not folder.is_dir():
                return None
        except OSError:  # a symlink loop or an unreadable cache: nothing stored can be used
            return None
        try:
            entry = json.loads((folder / ENTRY).read_text(encoding="utf-8"))
            problem = _problem(folder, entry)
        except (OSError, ValueError) as exc:
            entry, problem = None, f"{ENTRY} cannot be read ({exc})"
        if problem is None:
            self._verified[key] = StoredResult(folder, entry)
            return self._verified[key]
        warn(f"stored result {folder} is damaged ({problem}): removed, the task is evaluated again")
        aside = folder.with_name(f".{key}.damaged-{uuid.uuid4().hex[:8]}")
        try:  # renamed first, so a concurrent reader never sees a half-removed entry
            folder.rename(aside)
        except OSError:
            return None
        shutil.rmtree(aside, ignore_errors=True)
        return None

    def put(self, key: str, files: list[Path], entry: dict[str, Any]) -> None:
        """Store `files` and `entry` under `key`, atomically (an existing entry is kept)."""
        target = self.folder / key
        if self.failed or target.is_dir():
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(dir=self.folder, prefix=f".{key}."))
        except OSError as exc:  # a read-only or full cache, a symlink loop: the run goes on without storing
            self.failed = True
            warn(
                f"the result store {self.folder} cannot be written ({exc.strerror or exc}): this run's results are "
                "written to the output folder only (--cache-dir elsewhere, or --no-cache, to silence this)"
            )
            return
        try:
            staging.chmod(umask_mode(0o777))  # mkdtemp's folder is private
            for path in files:
                shutil.copyfile(path, staging / path.name)
            staged = [staging / p.name for p in files]
            entry = {**entry, "files": [p.name for p in files], CHECKSUMS: file_checksums(staged)}
            (staging / ENTRY).write_text(json.dumps(entry, indent=2, ensure_ascii=False, default=str), "utf-8")
            os.replace(staging, target)
        except OSError:  # another run stored the same key first, or the disk is full: keep going without it
            shutil.rmtree(staging, ignore_errors=True)


def _problem(folder: Path, entry: Any) -> str | None:
    """What makes a stored entry unusable: files missing or changed since they were stored, or a result that
    does not parse; None when it can stand for an evaluation."""
    if not isinstance(entry, dict) or not isinstance(entry.get(CHECKSUMS), dict):
        return "no checksums recorded"
    if not isinstance(entry.get("record"), dict):
        return "no run record entry"
    problem = checksum_problem(folder, entry[CHECKSUMS])
    if problem is not None:
        return problem
    for name in entry[CHECKSUMS]:
        try:  # metadata files parse to None; a result file must parse as one
            if name.endswith(".json"):
                parse_result_file(folder / name)
        except CmtebError as exc:
            return str(exc)
    return None
