"""Check a task's loaded data against what its mteb evaluator reads, before any model is loaded.

A copy that loads but breaks the evaluator (a missing column, a `None` or bytes where text belongs,
scores stored as strings, a classification train split with one label, two corpus documents with
one id and different texts) would otherwise fail deep inside mteb, or score silently wrong. Each
problem is one line naming the task, split, column and row.

The checks read Arrow columns (`Dataset.data`), not rows: a 100,000-document corpus is checked in
milliseconds, without turning rows into Python objects.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from cmteb.errors import CmtebError
from cmteb.tasks.registry import TaskSpec

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
    wanted = [*spec.splits, *([getattr(task, "train_split", "train")] if spec.type == "Classification" else [])]
    for data in subsets:
        for split in wanted:
            if split in data:
                yield split, data[split]


def _check_search(spec: TaskSpec, split: str, part: dict[str, Any]) -> None:
    for what in ("corpus", "queries"):
        table = _table(part[what])
        check_column(spec, f"{split}/{what}", table, "id", "label")
        check_column(spec, f"{split}/{what}", table, "text", "text")
        check_unique_ids(spec, f"{split}/{what}", table, "document" if what == "corpus" else "query")


def validate_task_data(task: Any, spec: TaskSpec) -> None:
    """Raise a one-line CmtebError for the first problem in a loaded task's data (see the module docstring)."""
    for split, part in _split_parts(task, spec):
        if isinstance(part, dict) and "corpus" in part:
            _check_search(spec, split, part)
            continue
        table = _table(part)
        for column, kind in _columns(task, spec.type):
            check_column(spec, split, table, column, kind)
        if spec.type == "Classification" and split == getattr(task, "train_split", "train"):
            check_distinct_labels(spec, split, table, task.label_column_name)


def _columns(task: Any, kind: str) -> list[tuple[str, Kind]]:
    """The columns mteb's evaluator of this task type reads, by the task's own column attributes."""
    if kind == "STS":
        first, second = task.column_names
        return [(first, "text"), (second, "text"), ("score", "number")]
    if kind == "PairClassification":
        return [(task.input1_column_name, "text"), (task.input2_column_name, "text"), (task.label_column_name, "label")]
    if kind in ("Classification", "Clustering"):
        return [(task.input_column_name, "text"), (task.label_column_name, "label")]
    return []


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
