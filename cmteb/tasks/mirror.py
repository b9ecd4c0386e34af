"""Local dataset mirrors: download them at the pinned revisions, record a manifest, verify them.

A mirror is a folder `DATA_DIR/<org>/<repo>/` per task, laid out as the hub repo, plus
`DATA_DIR/cmteb-manifest.json`: for each repo its revision and every file's size and sha256.
`cmteb run --data-dir` checks the recorded revisions against the registry.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cmteb.errors import CmtebError
from cmteb.fingerprints import DEFAULT, file_states, remembered
from cmteb.hub import network_errors_as, probe
from cmteb.io import atomic_write_json, feed_file, sha256_file
from cmteb.tasks.registry import TaskSpec

MANIFEST = "cmteb-manifest.json"
SKIPPED_DIRS = {".cache", ".git"}


def mirror_path(data_dir: Path, spec: TaskSpec, repo: str | None = None) -> Path:
    """Where a local mirror keeps the hub repo of `spec` (or its `repo`): `DATA_DIR/<org>/<name>`."""
    return Path(data_dir) / (repo or spec.repo)


def check_mirrors(data_dir: Path | None, specs: Iterable[TaskSpec]) -> None:
    """Refuse, naming the path, a `--data-dir` that lacks a repo one of `specs` reads."""
    if data_dir is None:
        return
    for spec in specs:
        for repo, _ in spec.repos:
            local = mirror_path(data_dir, spec, repo)
            if not local.is_dir():
                raise CmtebError(
                    f"--data-dir has no copy of {repo} for task {spec.name}: expected the directory {local} "
                    "(a copy of the hub dataset repo with its own layout, e.g. from `cmteb download`)"
                )


def mirror_fingerprint(data_dir: Path | None, spec: TaskSpec, memo: Any = DEFAULT) -> str | None:
    """A content hash of a task's local mirror (None on the hub, where the revision pins the data).

    Resume keys on it, so a mirror rewritten under the same path is evaluated again. `memo`: where it is
    remembered (`fingerprints.py`).
    """
    if data_dir is None:
        return None
    roots = [(repo, mirror_path(data_dir, spec, repo)) for repo, _ in spec.repos]
    files = {repo: sorted(p for p in root.rglob("*") if p.is_file()) for repo, root in roots}
    # Remembered by each file's size, inode and times: a full-size mirror holds gigabytes, read once.
    key = ["mirror", [(repo, str(root.resolve()), file_states(root, files[repo])) for repo, root in roots]]
    return remembered(key, lambda: _mirror_hash(roots, files), memo)


def _mirror_hash(roots: list[tuple[str, Path]], files: dict[str, list[Path]]) -> str:
    digest = hashlib.sha256()
    for repo, root in roots:
        for path in files[repo]:
            digest.update(f"{repo}/{path.relative_to(root)}".encode())
            feed_file(digest, path)
    return digest.hexdigest()[:16]


def describe_files(repo_dir: Path) -> dict[str, dict[str, Any]]:
    """Size and sha256 of every file of a mirrored repo (hub client metadata left out)."""
    files = {}
    for path in sorted(p for p in repo_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(repo_dir)
        if rel.parts[0] in SKIPPED_DIRS:
            continue
        files[rel.as_posix()] = {"size": path.stat().st_size, "sha256": sha256_file(path)}
    return files


def read_manifest(data_dir: Path) -> dict[str, Any] | None:
    """The mirror's manifest, or None when it has none."""
    path = Path(data_dir) / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise CmtebError(f"{path} is not valid JSON ({exc}): re-download the mirror with `cmteb download`") from exc


def download(specs: Iterable[TaskSpec], data_dir: Path) -> dict[str, Any]:
    """snapshot_download each task's repo at its pinned revision into `data_dir/<repo>` and record it."""
    from huggingface_hub import snapshot_download  # its hub client takes a fifth of a second to import

    data_dir = Path(data_dir)
    specs = list(specs)
    manifest = read_manifest(data_dir) or {"repos": {}}
    wanted = {
        pair for spec in specs for pair in spec.repos if manifest["repos"].get(pair[0], {}).get("revision") != pair[1]
    }
    for repo, revision in sorted(wanted):  # every repo answered before anything is written
        probe(repo, kind="download", revision=revision)
    data_dir.mkdir(parents=True, exist_ok=True)
    for spec in specs:
        for repo, revision in spec.repos:  # the dataset and, where separate, its qrels repo
            if repo in manifest["repos"] and manifest["repos"][repo]["revision"] == revision:
                manifest["repos"][repo]["tasks"] = sorted({*manifest["repos"][repo]["tasks"], spec.name})
                continue
            local = data_dir / repo
            with network_errors_as("download", repo):  # the network may go away after the probe
                snapshot_download(repo_id=repo, repo_type="dataset", revision=revision, local_dir=local)
            manifest["repos"][repo] = {
                "revision": revision,
                "tasks": [spec.name],
                "downloaded": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "files": describe_files(local),
            }
            atomic_write_json(data_dir / MANIFEST, manifest)  # after each repo: an interrupted download keeps the rest
    atomic_write_json(data_dir / MANIFEST, manifest)
    return manifest


def verify(data_dir: Path, registry_revisions: dict[str, str]) -> list[str]:
    """Problems of a mirror against its manifest and the registry's revisions (empty: all good)."""
    manifest = read_manifest(data_dir)
    if manifest is None:
        raise CmtebError(f"{Path(data_dir) / MANIFEST} not found: the mirror was not made by `cmteb download`")
    problems = []
    for repo, entry in sorted(manifest["repos"].items()):
        expected = registry_revisions.get(repo)
        if expected is not None and entry["revision"] != expected:
            problems.append(f"{repo}: mirrored at revision {entry['revision']}, the registry pins {expected}")
        repo_dir = Path(data_dir) / repo
        actual = describe_files(repo_dir) if repo_dir.is_dir() else {}
        for name, meta in entry["files"].items():
            if name not in actual:
                problems.append(f"{repo}/{name}: missing")
            elif actual[name]["size"] != meta["size"]:
                problems.append(f"{repo}/{name}: size {actual[name]['size']}, manifest says {meta['size']}")
            elif actual[name]["sha256"] != meta["sha256"]:
                problems.append(f"{repo}/{name}: content differs from the manifest (sha256)")
        for name in sorted(set(actual) - set(entry["files"])):
            problems.append(f"{repo}/{name}: not in the manifest")
    return problems


def mirror_revisions(
    data_dir: Path | None, specs: Iterable[TaskSpec], *, allow_mismatch: bool
) -> dict[str, str | None]:
    """The recorded revision of each task's mirror (None: no manifest entry, unverified).

    A recorded revision that differs from the registry's is refused unless `allow_mismatch`.
    """
    if data_dir is None:
        return {}
    manifest = read_manifest(data_dir) or {"repos": {}}
    revisions = {}
    for spec in specs:
        for repo, pinned in spec.repos:
            entry = manifest["repos"].get(repo)
            revision = entry["revision"] if entry else None
            if revision is not None and revision != pinned and not allow_mismatch:
                raise CmtebError(
                    f"the mirror of {repo} is at revision {revision} but {spec.name} pins {pinned}: "
                    "re-download it with `cmteb download`, or pass --allow-revision-mismatch"
                )
            if repo == spec.repo:
                revisions[spec.name] = revision
    return revisions


@contextmanager
def mirror_dataset_cache(fingerprint: str | None) -> Iterator[None]:
    """While loading a local mirror, key `datasets`' cache on the mirror's content.

    `datasets` caches local files by path and modification time and has served the old
    content after a file was rewritten in place; a cache folder per content hash cannot.
    """
    if fingerprint is None:
        yield
        return
    import datasets

    saved = datasets.config.HF_DATASETS_CACHE
    datasets.config.HF_DATASETS_CACHE = Path(saved) / "cmteb-mirrors" / fingerprint
    try:
        yield
    finally:
        datasets.config.HF_DATASETS_CACHE = saved
