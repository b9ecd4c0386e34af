"""A model argument (hub id, local directory) resolved to its files, its name and its revision: `ModelSource`.

A local folder is named `local/<folder>` and revised by a hash of its files (remembered by size, inode and
times); a hub model by its id and the commit it is at. Every name and revision that reaches a results folder
is checked here.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cmteb.errors import CmtebError
from cmteb.fingerprints import DEFAULT, file_states, remembered
from cmteb.hub import probe
from cmteb.io import feed_file

WEIGHT_FILES = (
    "model.safetensors",
    "pytorch_model.bin",
    "model.safetensors.index.json",
    "pytorch_model.bin.index.json",
)


@dataclass(frozen=True)
class ModelSource:
    """Where a model's files are: `path` is what transformers loads (local dir or hub id)."""

    path: str
    name: str
    revision: str | None
    local_dir: Path | None
    named_by: str = "its hub id"  # why results are filed under `name`: its hub id, --model-name, or its folder
    revision_is: str = "its hub commit"  # what `revision` is: the hub commit, a hash of the files, or --revision


#: Files of a model folder that cannot change an embedding (documentation, images, version control).
NOT_MODEL_FILES = ("README", "LICENSE", ".git", ".gitattributes", ".cache")
NOT_MODEL_SUFFIXES = (".md", ".png", ".jpg", ".jpeg", ".gif", ".svg", ".pdf", ".lock")


def _model_files(model_dir: Path) -> list[Path]:
    """Every file of a model folder that can change an embedding, in a stable order."""
    files = []
    for path in sorted(model_dir.rglob("*")):
        relative = path.relative_to(model_dir)
        if not path.is_file() or any(part.startswith(NOT_MODEL_FILES) for part in relative.parts):
            continue
        if path.suffix.lower() not in NOT_MODEL_SUFFIXES:
            files.append(path)
    return files


def model_fingerprint(model_dir: Path, memo: Any = DEFAULT) -> str:
    """A short content hash of everything in a local model folder that can change an embedding: the
    weights, the config, the tokenizer files, and sentence-transformers' pooling and normalisation files.

    It stands in for a revision: the embedding cache, the result store and the output folder key on it,
    so any change to those files is evaluated afresh. Hashing a large model takes about a second per GB,
    so the hash is kept in `memo` (`fingerprints.py`) keyed by each file's path, size, inode, modification and
    status-change times: a model is read in full once, then only when a file changes.
    """
    files = _model_files(model_dir)
    key = [str(Path(model_dir).resolve()), file_states(model_dir, files)]
    return remembered(key, lambda: _files_hash(model_dir, files), memo)


def _files_hash(model_dir: Path, files: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(model_dir)).encode("utf-8") + b"\0")
        feed_file(digest, path).update(b"\0")
    return digest.hexdigest()[:16]


def _looks_like_path(model: str) -> bool:
    """Hub ids are `name` or `org/name`; anything else is meant as a filesystem path."""
    return model.startswith((".", "/", "~")) or model.count("/") > 1


def check_hub_id(value: str, what: str) -> None:
    """Refuse a model name that is not a hub id (`org/name` of letters, digits, '-', '_', '.'; no '..'): the
    name becomes a results folder, so it must never climb out of the output folder."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(value)
    except HFValidationError:
        raise CmtebError(
            f"{what} {value!r} is not a hub id: use org/name of letters, digits, '-', '_' and '.' "
            "(not starting or ending with '-' or '.', no '..'), e.g. my-org/my-model"
        ) from None


#: A revision is a results folder's name: a commit hash, tag or branch name without separators.
REVISION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def check_revision(revision: str | None) -> None:
    """Refuse a --revision that cannot be a folder name inside the output folder ('..', '/', absolute)."""
    if revision is not None and (not REVISION.fullmatch(revision) or ".." in revision):
        raise CmtebError(
            f"--revision {revision!r} cannot name a results folder: use a commit hash, tag or branch name of "
            "letters, digits, '.', '_' and '-' (for a hub branch with '/', pass its commit hash)"
        )


def local_model_name(folder: Path) -> str:
    """`local/<folder name>`, with anything but letters, digits, '_', '.' and '-' made '_' (a folder may be
    called anything; a results folder may not climb out of the output folder)."""
    safe = re.sub(r"[^\w.-]", "_", folder.resolve().name).lstrip(".-")
    return f"local/{safe or 'model'}"


def resolve_model(
    model: str, *, name: str | None = None, revision: str | None = None, memo: Any = DEFAULT
) -> ModelSource:
    """Resolve `model` to a local directory or a hub id; fail at once with a clear message.

    Local directories must hold a config and weights. A hub id must be in the local HF cache
    when `HF_HUB_OFFLINE` is set, so an offline machine fails now rather than after retries.
    """
    if name is not None and name.count("/") != 1:
        raise CmtebError(f"--model-name {name!r} must look like org/name (mteb's model naming), e.g. my-org/my-model")
    if name is not None:
        check_hub_id(name, "--model-name")
    check_revision(revision)
    local = Path(model).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise CmtebError(
                f"model directory {local} has no config.json: point --model at a transformers model directory"
            )
        if not any((local / w).is_file() for w in WEIGHT_FILES):
            raise CmtebError(
                f"model directory {local} has no weights (model.safetensors or pytorch_model.bin): "
                "copy the weight files there or pass a hub id"
            )
        # mteb names models org/name: a local model goes under "local/", named after its folder. (Its
        # config's `_name_or_path` often names the base model it was trained from, not the model.)
        display, named_by = (name, "--model-name") if name else (local_model_name(local), "its folder")
        revision_is = "given with --revision" if revision else "a hash of its weight, config and tokenizer files"
        revision = revision or model_fingerprint(local, memo)
        return ModelSource(str(local), display, revision, local, named_by, revision_is)
    if _looks_like_path(model) or local.exists():
        raise CmtebError(
            f"model path {model} does not exist: pass an existing model directory "
            "or a hub id like BAAI/bge-large-zh-v1.5"
        )
    check_hub_id(model, "--model")
    return _resolve_hub_id(model, name=name, revision=revision)


def _resolve_hub_id(model: str, *, name: str | None, revision: str | None) -> ModelSource:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    named_by = "--model-name" if name else "its hub id"
    try:
        local = Path(snapshot_download(model, revision=revision, local_files_only=True))
    except (LocalEntryNotFoundError, OSError, ValueError):
        # One quick question, not minutes of retries; its answer pins the commit the run downloads and
        # records (a branch may move on while it runs).
        commit = probe(model, kind="model", revision=revision)
        return ModelSource(model, name or model, commit or revision, None, named_by)
    # The snapshot folder is named after the commit it holds: that is the model's revision.
    revision = revision if revision and len(revision) == 40 else local.name
    return ModelSource(str(local), name or model, revision, local, named_by)
