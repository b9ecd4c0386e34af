"""Turn registry entries into mteb task objects, on the hub or on a local mirror."""

from __future__ import annotations

import contextlib
import errno
from pathlib import Path

import mteb
from mteb.abstasks import AbsTask

from cmteb.errors import CmtebError
from cmteb.hub import network_errors_as
from cmteb.mteb_hooks import CAPTURE_MIXINS, IN_MEMORY_MIXINS, PytrecInSlices, QrelsInOnePass
from cmteb.tasks.crosslingual import CROSSLINGUAL_TASKS
from cmteb.tasks.layouts import LAYOUT_MIXINS
from cmteb.tasks.mirror import check_mirrors, mirror_path
from cmteb.tasks.qrel_gaps import QrelGaps, qrel_gaps
from cmteb.tasks.registry import TaskSpec
from cmteb.tasks.subsample import Subsampled
from cmteb.tasks.types import task_type
from cmteb.tasks.validate import validate_task_data


def _task_class(spec: TaskSpec) -> type[AbsTask]:
    if spec.name in CROSSLINGUAL_TASKS:
        return CROSSLINGUAL_TASKS[spec.name]
    cls = type(mteb.get_task(spec.run_as or spec.name))
    if spec.loader is not None:
        cls = type(cls.__name__, (LAYOUT_MIXINS[spec.loader], cls), {})
    return cls


def _reading(cls: type[AbsTask], spec: TaskSpec, data_dir: Path | None) -> type[AbsTask]:
    """A subclass of the task class that reads the protocol's repo and revision (or their mirror).

    The name and everything else stay official. It is a subclass rather than an instance-level
    metadata change because mteb drops instance metadata after an evaluation.
    """

    def source(repo: str, revision: str) -> dict[str, str]:
        return {"path": str(mirror_path(data_dir, spec, repo)) if data_dir is not None else repo, "revision": revision}

    (repo, revision), *qrels = spec.repos
    dataset = {**cls.metadata.dataset, **source(repo, revision)}
    attrs: dict[str, object] = {"metadata": cls.metadata.model_copy(update={"dataset": dataset})}
    if qrels:
        attrs["qrels_dataset"] = source(*qrels[0])
    return type(cls.__name__, (cls,), attrs)


def build_task(
    spec: TaskSpec,
    data_dir: Path | None = None,
    *,
    capture_items: bool = False,
    subsample: int | None = None,
    subsample_corpus: int | None = None,
    in_memory: bool = True,
) -> AbsTask:
    """A fresh mteb task object for `spec` (fresh each time: some tasks keep RNG state).

    With `data_dir`, the task reads `data_dir/<repo>`, a local copy laid out as the hub repo.
    `capture_items` keeps the per-query/per-item values behind the main score
    (`task.captured_items`); `subsample` keeps a deterministic subsample of N items per split.
    `in_memory` hands mteb's evaluators columns read into lists (`cmteb.mteb_hooks.IN_MEMORY_MIXINS`):
    the same results, without row-by-row reads, and retrieval runs scored in slices (`PytrecInSlices`); off,
    the task evaluates as plain mteb's does.
    """
    check_mirrors(data_dir, [spec])  # a task object never points at a folder that is not there
    cls = _reading(_task_class(spec), spec, data_dir)
    mixins: list[type] = []
    capture = task_type(spec.type).capture
    if capture_items and capture is not None:
        mixins.append(CAPTURE_MIXINS[capture])
    if subsample is not None:
        mixins.append(Subsampled)
    if in_memory and _reads_rows(spec, cls):
        mixins.append(IN_MEMORY_MIXINS[task_type(spec.type).in_memory])  # type: ignore[index]
    if in_memory and _mteb_retrieval_layout(spec, cls):
        mixins.append(QrelsInOnePass)
    if in_memory and _scored_by_pytrec_eval(cls):
        mixins.append(PytrecInSlices)
    if mixins:
        attrs = {"subsample_n": subsample or 0, "subsample_corpus_extra": subsample_corpus or 20 * (subsample or 0)}
        cls = type(cls.__name__, (*mixins, cls), attrs)
    task = cls()
    task.filter_eval_splits(list(spec.splits))
    if spec.hf_subsets:
        task.filter_languages(None, hf_subsets=list(spec.hf_subsets))
    return task


def _reads_rows(spec: TaskSpec, cls: type) -> bool:
    """Whether mteb's evaluation of this task reads columns row by row where a list would do (its type names an
    in-memory mixin; of clustering, only the legacy evaluation, one Dataset per cluster set)."""
    from mteb.abstasks.clustering_legacy import AbsTaskClusteringLegacy

    if task_type(spec.type).in_memory == "clusters":
        return issubclass(cls, AbsTaskClusteringLegacy)
    return task_type(spec.type).in_memory is not None


def _scored_by_pytrec_eval(cls: type) -> bool:
    """Whether mteb scores the task's run with pytrec_eval (its retrieval and reranking tasks)."""
    from mteb.abstasks.retrieval import AbsTaskRetrieval

    return issubclass(cls, AbsTaskRetrieval)


def _mteb_retrieval_layout(spec: TaskSpec, cls: type) -> bool:
    """Whether the task reads its data with mteb's own retrieval loader (not a 2023 layout's reader)."""
    from mteb.abstasks.retrieval import AbsTaskRetrieval

    return spec.loader is None and getattr(cls, "load_data", None) is AbsTaskRetrieval.load_data


def _split_sizes(task: AbsTask, spec: TaskSpec) -> dict[str, int]:
    if spec.hf_subsets:  # multilingual: {subset: splits}
        data = task.dataset.get(spec.hf_subsets[0], {})
    elif "default" in task.dataset and isinstance(task.dataset["default"], dict):
        data = task.dataset["default"]
    else:
        data = task.dataset
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


def _cache_full(spec: TaskSpec) -> CmtebError:
    """A full disk under `datasets`' cache, where loaded data is converted to Arrow: not the data's fault."""
    import datasets

    return CmtebError(
        f"no space left to load task {spec.name}: `datasets` converts data into its cache "
        f"({datasets.config.HF_DATASETS_CACHE}); free space there or point HF_DATASETS_CACHE at a larger disk"
    )


def load_task_data(task: AbsTask, spec: TaskSpec, data_dir: Path | None) -> QrelGaps:
    """Load a task's data now, turning any failure into a one-line error that names the source.

    Also refuses empty or missing eval splits and data the evaluator cannot read
    (`cmteb.tasks.validate`). Returns the qrels naming unknown documents or
    queries (none for other task types).
    """
    source = str(mirror_path(data_dir, spec)) if data_dir is not None else f"the hub repo {spec.repo}"
    if data_dir is not None:
        _refuse_empty_files(mirror_path(data_dir, spec), spec)
    # Hub data that is neither cached nor reachable says so; a local copy's failures are the copy's.
    offline = network_errors_as("dataset", spec.repo, subject=f"the data of task {spec.name}")
    try:
        with offline if data_dir is None else contextlib.nullcontext():
            task.load_data()
    except (KeyboardInterrupt, CmtebError):
        raise
    except Exception as exc:  # datasets, pyarrow and mteb raise many types for bad files
        root = exc  # the innermost cause says what is wrong (datasets wraps it in a generic error)
        while (root.__cause__ or root.__context__) is not None:
            root = root.__cause__ or root.__context__
        if isinstance(root, OSError) and root.errno == errno.ENOSPC:
            raise _cache_full(spec) from exc
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
    validate_task_data(task, spec)
    return qrel_gaps(task) if task_type(spec.type).searches else QrelGaps()
