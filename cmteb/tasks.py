"""Turn registry entries into mteb task objects, on the hub or on a local mirror."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import mteb
from mteb.abstasks import AbsTask

from cmteb.crosslingual import CROSSLINGUAL_TASKS
from cmteb.errors import CmtebError
from cmteb.per_item import CAPTURE_MIXINS
from cmteb.registry import TaskSpec
from cmteb.subsample import Subsampled


def mirror_path(data_dir: Path, spec: TaskSpec) -> Path:
    """Where a local mirror keeps the hub repo of `spec`: `DATA_DIR/<org>/<name>`."""
    return Path(data_dir) / spec.repo


def _task_class(spec: TaskSpec) -> type[AbsTask]:
    if spec.name in CROSSLINGUAL_TASKS:
        return CROSSLINGUAL_TASKS[spec.name]
    return type(mteb.get_task(spec.run_as or spec.name))


def _on_local_mirror(cls: type[AbsTask], local: Path) -> type[AbsTask]:
    """A subclass of the official task class that reads `local` instead of the hub.

    The name, revision and everything else stay official. It is a subclass rather than an
    instance-level metadata change because mteb drops instance metadata after an evaluation.
    """
    dataset = {**cls.metadata.dataset, "path": str(local)}
    return type(cls.__name__, (cls,), {"metadata": cls.metadata.model_copy(update={"dataset": dataset})})


def build_task(
    spec: TaskSpec,
    data_dir: Path | None = None,
    *,
    capture_items: bool = False,
    subsample: int | None = None,
    subsample_corpus: int | None = None,
) -> AbsTask:
    """A fresh mteb task object for `spec` (fresh each time: some tasks keep RNG state).

    With `data_dir`, the task reads `data_dir/<repo>`, a local copy laid out as the hub repo.
    `capture_items` keeps the per-query/per-item values behind the main score
    (`task.captured_items`); `subsample` keeps a deterministic subsample of N items per split.
    """
    cls = _task_class(spec)
    if data_dir is not None:
        local = mirror_path(data_dir, spec)
        if not local.is_dir():
            raise CmtebError(
                f"--data-dir has no copy of {spec.repo} for task {spec.name}: expected the directory {local} "
                "(a copy of the hub dataset repo with its own layout, e.g. from huggingface_hub.snapshot_download)"
            )
        cls = _on_local_mirror(cls, local)
    mixins: list[type] = []
    if capture_items and spec.type in CAPTURE_MIXINS:
        mixins.append(CAPTURE_MIXINS[spec.type])
    if subsample is not None:
        if subsample < 1:
            raise CmtebError(f"--subsample must be a positive number of items, got {subsample}")
        mixins.append(Subsampled)
    if mixins:
        attrs = {"subsample_n": subsample or 0, "subsample_corpus_extra": subsample_corpus or 20 * (subsample or 0)}
        cls = type(cls.__name__, (*mixins, cls), attrs)
    task = cls()
    task.filter_eval_splits(list(spec.splits))
    return task


def mirror_fingerprint(data_dir: Path | None, spec: TaskSpec) -> str | None:
    """A content hash of a task's local mirror (None on the hub, where the revision pins the data).

    Resume keys on it, so a mirror rewritten under the same path is evaluated again.
    """
    if data_dir is None:
        return None
    root = mirror_path(data_dir, spec)
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode("utf-8"))
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16]


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


def _split_sizes(task: AbsTask, spec: TaskSpec) -> dict[str, int]:
    data = (
        task.dataset["default"]
        if "default" in task.dataset and isinstance(task.dataset["default"], dict)
        else task.dataset
    )
    sizes = {}
    for split in spec.splits:
        part = data.get(split) if hasattr(data, "get") else None
        if part is None:
            sizes[split] = -1
        elif isinstance(part, dict) and "queries" in part:  # retrieval split data
            sizes[split] = min(len(part["queries"]), len(part["corpus"]))
        else:
            sizes[split] = len(part)
    return sizes


def unknown_qrel_documents(task: AbsTask) -> int:
    """How many qrels name documents that are not in the corpus (retrieval and reranking tasks).

    They cannot be retrieved, so they count as misses, as trec_eval counts them.
    """
    missing = 0
    for splits in task.dataset.values():
        for part in splits.values():
            if isinstance(part, dict) and "relevant_docs" in part:
                corpus = set(part["corpus"]["id"])
                missing += sum(d not in corpus for docs in part["relevant_docs"].values() for d in docs)
    return missing


def _refuse_empty_files(local: Path, spec: TaskSpec) -> None:
    """An eval split's parquet file without rows makes `datasets` fail obscurely: say it plainly."""
    import pyarrow.parquet as pq

    for split in spec.splits:
        for path in sorted(local.glob(f"*/{split}-*.parquet")):
            try:
                rows = pq.read_metadata(path).num_rows
            except Exception:  # unreadable files are reported by the load that follows
                continue
            if rows == 0:
                raise CmtebError(f"task {spec.name}: split {split!r} file {path} is empty: re-download that copy")


def load_task_data(task: AbsTask, spec: TaskSpec, data_dir: Path | None) -> int:
    """Load a task's data now, turning any failure into a one-line error that names the source.

    Also refuses empty or missing eval splits. Returns the number of qrels naming unknown
    documents (0 for other task types).
    """
    source = str(mirror_path(data_dir, spec)) if data_dir is not None else f"the hub repo {spec.repo}"
    if data_dir is not None:
        _refuse_empty_files(mirror_path(data_dir, spec), spec)
    try:
        task.load_data()
    except (KeyboardInterrupt, CmtebError):
        raise
    except Exception as exc:  # datasets, pyarrow and mteb raise many types for bad files
        root = exc  # the innermost cause says what is wrong (datasets wraps it in a generic error)
        while (root.__cause__ or root.__context__) is not None:
            root = root.__cause__ or root.__context__
        first_line = (str(root).strip().splitlines() or [type(root).__name__])[0]
        raise CmtebError(
            f"cannot load task {spec.name} from {source} ({type(root).__name__}: {first_line}): "
            "check or re-download that copy (`cmteb verify`)"
        ) from exc
    for split, size in _split_sizes(task, spec).items():
        if size < 0:
            raise CmtebError(f"task {spec.name}: {source} has no split {split!r}: re-download that copy")
        if size == 0:
            raise CmtebError(f"task {spec.name}: split {split!r} in {source} is empty: re-download that copy")
    return unknown_qrel_documents(task) if spec.type in ("Retrieval", "Reranking") else 0
