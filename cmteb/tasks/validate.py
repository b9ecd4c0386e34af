"""Check a task's loaded data against what its mteb evaluator reads, before any model is loaded.

A copy that loads but breaks the evaluator (a missing column, a `None`, bytes or invalid UTF-8 where
text belongs, scores stored as strings, ids stored as numbers, a reranking candidate missing from
the corpus, two corpus documents with one id and different texts) would otherwise fail deep inside
mteb. Degenerate data would score without a word: a NaN or constant gold score (Spearman's rho is
undefined), a classification train split or a clustering set with one label (v-measure is 1 for any
model), a reranking query without candidates. Each problem is one line naming the task, split,
column and row.

The checks read Arrow columns (`Dataset.data`), not rows: a 100,000-document corpus is checked in
milliseconds, without turning rows into Python objects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from cmteb.errors import CmtebError
from cmteb.tasks.registry import TaskSpec
from cmteb.tasks.types import task_type

#: What a column must hold: "text" (strings), "number" (ints or floats), "label" (ints or strings).
Kind = str


def _fail(spec: TaskSpec, split: str, column: str, problem: str) -> CmtebError:
    return CmtebError(f"task {spec.name}, split {split!r}, column {column!r}: {problem}: fix that copy of the data")


def _values(column: pa.ChunkedArray) -> tuple[pa.Array, pa.Array]:
    """A column's values with each value's row: list columns (one row of lists) are flattened."""
    array = column.combine_chunks()
    rows = pa.array(range(len(array)), pa.int64())
    while pa.types.is_list(array.type) or pa.types.is_large_list(array.type):
        rows = pc.take(rows, pc.list_parent_indices(array))
        array = pc.list_flatten(array)
    return array, rows


def _type_ok(arrow_type: pa.DataType, kind: Kind) -> bool:
    if pa.types.is_null(arrow_type):
        return True  # all values missing: reported as a missing value below
    text = pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)
    number = pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type)
    return {"text": text, "number": number, "label": text or pa.types.is_integer(arrow_type)}[kind]


def check_column(spec: TaskSpec, split: str, table: pa.Table, column: str, kind: Kind) -> None:
    """Refuse a column that is absent, of the wrong type, or holds a missing value."""
    if column not in table.column_names:
        raise _fail(spec, split, column, f"missing (columns: {', '.join(table.column_names)})")
    chunked = table.column(column)
    flat = not (pa.types.is_list(chunked.type) or pa.types.is_large_list(chunked.type))
    if flat and _type_ok(chunked.type, kind) and chunked.null_count == 0:
        return  # the usual case, told without copying the column (a full-size corpus: hundreds of MB)
    values, rows = _values(chunked)
    if not _type_ok(values.type, kind):
        wanted = {"text": "text", "number": "numbers", "label": "integer or text labels"}[kind]
        raise _fail(spec, split, column, f"holds {values.type} values where {wanted} belong")
    if values.null_count:
        row = rows[pc.index(pc.is_null(values), True).as_py()].as_py()
        raise _fail(spec, split, column, f"row {row} has no value")


def check_utf8(spec: TaskSpec, split: str, table: pa.Table, column: str) -> None:
    """Refuse text that is not valid UTF-8: a JSON-lines file's bytes reach Arrow unchecked, and fail only
    when the evaluator reads them."""
    values, rows = _values(table.column(column))
    try:
        values.validate(full=True)
        return
    except pa.ArrowInvalid:
        pass
    for index in range(len(values)):  # only on failure: find the row to name
        try:
            values.slice(index, 1).validate(full=True)
        except pa.ArrowInvalid:
            row = rows[index].as_py()
            raise _fail(spec, split, column, f"row {row} is not valid UTF-8 text") from None


def check_gold_scores(spec: TaskSpec, split: str, table: pa.Table, column: str) -> None:
    """Refuse gold scores Spearman's rho cannot be computed on: a NaN, or one value for every pair."""
    values = table.column(column).combine_chunks()
    if pa.types.is_floating(values.type) and pc.any(pc.is_nan(values)).as_py():
        row = pc.index(pc.is_nan(values), True).as_py()
        raise _fail(spec, split, column, f"row {row} is NaN")
    if len(pc.unique(values)) < 2:
        raise _fail(spec, split, column, f"every gold score is {values[0].as_py()}: Spearman's rho is undefined")


def check_clusters(spec: TaskSpec, split: str, table: pa.Table, texts: str, labels: str) -> None:
    """Each clustering set (a row of lists, or the whole split) needs as many labels as texts and two distinct
    labels: with one, v-measure is 1 whatever the model."""
    column = table.column(labels)
    if not (pa.types.is_list(column.type) or pa.types.is_large_list(column.type)):
        if len(pc.unique(column)) < 2:
            raise _fail(spec, split, labels, "every text has one label: v-measure is 1 for any model")
        return
    label_counts = pc.list_value_length(column).to_pylist()
    text_counts = pc.list_value_length(table.column(texts)).to_pylist()
    for row, (n_labels, n_texts) in enumerate(zip(label_counts, text_counts, strict=True)):
        if n_labels != n_texts:
            raise _fail(spec, split, labels, f"row {row} has {n_labels} labels for {n_texts} texts")
        if len(pc.unique(column[row].values)) < 2:
            raise _fail(spec, split, labels, f"row {row} is a set with fewer than 2 distinct labels")


def check_distinct_labels(spec: TaskSpec, split: str, table: pa.Table, column: str) -> None:
    """A classifier trained on one label cannot be scored: mteb's logistic regression refuses it."""
    values, _ = _values(table.column(column))
    if len(pc.unique(values)) < 2:
        raise _fail(spec, split, column, "the training split has fewer than 2 distinct labels")


def check_unique_ids(spec: TaskSpec, split: str, table: pa.Table, what: str) -> None:
    """Two documents (or queries) with one id and different texts: which one the qrels mean is unknowable."""
    ids = table.column("id")
    if pc.count_distinct(ids).as_py() == len(ids):  # no id repeats (the rule): no need to hash every text
        return
    texts = table.select(["id", "text"]).group_by("id").aggregate([("text", "count_distinct")])
    clashing = texts.filter(pc.greater(texts.column("text_count_distinct"), 1))
    if clashing.num_rows:
        first = clashing.column("id")[0].as_py()
        raise _fail(spec, split, "id", f"{clashing.num_rows} {what} ids name different texts (first: {first!r})")


def _table(part: Any) -> pa.Table:
    return part.data.table if hasattr(part.data, "table") else part.data


def _split_parts(task: Any, spec: TaskSpec) -> Iterator[tuple[str, Any]]:
    """(split, data) for every split the evaluation reads (the eval splits, and a classifier's training
    split), in every subset the task keeps."""
    dataset = task.dataset
    if spec.hf_subsets:
        subsets = [dataset[s] for s in spec.hf_subsets if s in dataset]
    else:
        subsets = [dataset.get("default", dataset)]
    wanted = [*spec.splits, *([getattr(task, "train_split", "train")] if task_type(spec.type).train_split else [])]
    for data in subsets:
        for split in wanted:
            if split in data:
                yield split, data[split]


def _check_search(spec: TaskSpec, split: str, part: dict[str, Any]) -> None:
    for what in ("corpus", "queries"):
        table = _table(part[what])
        check_column(spec, f"{split}/{what}", table, "id", "text")
        check_column(spec, f"{split}/{what}", table, "text", "text")
        check_utf8(spec, f"{split}/{what}", table, "text")
        check_unique_ids(spec, f"{split}/{what}", table, "document" if what == "corpus" else "query")
    if part.get("top_ranked") is not None:
        check_candidates(spec, split, part)


def check_candidates(spec: TaskSpec, split: str, part: dict[str, Any]) -> None:
    """A reranking split's candidate lists (`top_ranked`): every query with qrels has candidates, and every
    candidate is a corpus document (mteb looks each up, and stops on the first it cannot find)."""
    top_ranked: dict[str, list[str]] = part["top_ranked"]
    without = [query for query in part["relevant_docs"] if not top_ranked.get(query)]
    if without:
        problem = f"{len(without)} queries with qrels have no candidates (first: {without[0]!r})"
        raise _fail(spec, f"{split}/top_ranked", "query-id", problem)
    corpus = set(_table(part["corpus"]).column("id").to_pylist())
    for query, candidates in top_ranked.items():
        missing = [doc for doc in candidates if doc not in corpus]
        if missing:
            raise _fail(
                spec, f"{split}/top_ranked", "corpus-ids", f"query {query!r} names {missing[0]!r}, not in the corpus"
            )


def validate_task_data(task: Any, spec: TaskSpec) -> None:
    """Raise a one-line CmtebError for the first problem in a loaded task's data (see the module docstring)."""
    for split, part in _split_parts(task, spec):
        if isinstance(part, dict) and "corpus" in part:
            _check_search(spec, split, part)
            continue
        table = _table(part)
        for column, kind in _columns(task, spec.type):
            check_column(spec, split, table, column, kind)
            if kind == "text":
                check_utf8(spec, split, table, column)
        _check_degenerate(task, spec, split, table)


def _check_degenerate(task: Any, spec: TaskSpec, split: str, table: pa.Table) -> None:
    """Data that loads and would score, but to a number that says nothing about the model: each check its type
    names (`TaskType.checks`)."""
    for check in task_type(spec.type).checks:
        DATA_CHECKS[check](task, spec, split, table)


def _train_labels(task: Any, spec: TaskSpec, split: str, table: pa.Table) -> None:
    if split == getattr(task, "train_split", "train"):
        check_distinct_labels(spec, split, table, task.label_column_name)


#: The degenerate-data checks a task type can name (`TaskType.checks`): (task, spec, split, table) -> None.
DATA_CHECKS: dict[str, Callable[[Any, TaskSpec, str, pa.Table], None]] = {
    "gold_scores": lambda task, spec, split, table: check_gold_scores(spec, split, table, "score"),
    "clusters": lambda task, spec, split, table: check_clusters(
        spec, split, table, task.input_column_name, task.label_column_name
    ),
    "train_labels": _train_labels,
}


def _columns(task: Any, kind: str) -> list[tuple[str, Kind]]:
    """The columns mteb's evaluator of this task type reads, as its type's entry names them."""
    return task_type(kind).columns(task)


def task_texts(task: Any, spec: TaskSpec) -> list[str]:
    """Every text of a loaded (non-search) task, from the columns its evaluator reads: what a lexical
    baseline fits its idf on."""
    texts: list[str] = []
    for _split, part in _split_parts(task, spec):
        table = _table(part)
        for column, kind in _columns(task, spec.type):
            if kind == "text":
                texts.extend(_values(table.column(column))[0].to_pylist())
    return texts
