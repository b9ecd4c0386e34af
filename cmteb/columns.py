"""A `datasets.Dataset` as mteb's evaluators read it, with each column read once into a Python list.

`datasets` 5 hands out a lazy `Column` for `split[name]`, and mteb's evaluators read those one row
at a time: `Dataset.from_dict({"text": column})` for every encode call, `set(labels)`,
`np.asarray(labels)` in scikit-learn's checks, the label lookups of classification's
undersampling. On these machines that is about 0.14 ms a row: TNews and IFlyTek at full size
spent 11 s building data loaders, two legacy clustering tasks 39 s (10 sets of up to 10,000 texts
each) and 14 s more reading labels. A `ColumnsInMemory` answers the same reads from lists made
in one Arrow slice, with the same values in the same order, so every evaluator sees what it saw
before. Anything else asked of it is answered by the equivalent `Dataset` (`materialized`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

#: `Dataset.map` options a view answers itself (display and parallelism only); any other goes to `datasets`.
MAP_OPTIONS_ANSWERED = frozenset({"desc", "num_proc"})


class ColumnsInMemory:
    """Rows of a `Dataset` (all, or a selection) under visible column names; columns come back as lists."""

    def __init__(
        self,
        dataset: Any,
        rows: list[int] | None = None,
        names: dict[str, str] | None = None,
        lists: dict[str, list[Any]] | None = None,
    ) -> None:
        self._dataset = dataset  # None: the columns exist only as `lists` (a `map`'s output)
        self._rows = rows  # positions in `dataset`, in order; None: every row
        self._names = names if names is not None else {n: n for n in dataset.column_names}
        self._lists = lists if lists is not None else {}  # shared by every view of one dataset

    @classmethod
    def from_lists(cls, columns: dict[str, list[Any]]) -> ColumnsInMemory:
        """A view of columns that exist only as lists of equal length; a `Dataset` is built only if asked for."""
        return cls(None, None, {name: name for name in columns}, columns)

    def __len__(self) -> int:
        if self._rows is not None:
            return len(self._rows)
        if self._dataset is None:
            return len(next(iter(self._lists.values()), []))
        return len(self._dataset)

    @property
    def column_names(self) -> list[str]:
        return list(self._names)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            values = self._column(key)
            return list(values) if self._rows is None else [values[i] for i in self._rows]
        if isinstance(key, int):
            position = key if self._rows is None else self._rows[key]
            return {name: self._column(name)[position] for name in self._names}
        return self.materialized()[key]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for i in range(len(self)):
            yield self[i]

    def select(self, indices: Iterable[int], **_: Any) -> ColumnsInMemory:
        """The rows at `indices` (positions in this view), as `Dataset.select` picks them."""
        picked = [int(i) for i in indices]
        rows = picked if self._rows is None else [self._rows[i] for i in picked]
        return ColumnsInMemory(self._dataset, rows, self._names, self._lists)

    def select_columns(self, column_names: str | list[str], **_: Any) -> ColumnsInMemory:
        """Only `column_names`, in that order."""
        chosen = [column_names] if isinstance(column_names, str) else list(column_names)
        self._check(chosen)
        return ColumnsInMemory(self._dataset, self._rows, {n: self._names[n] for n in chosen}, self._lists)

    def rename_columns(self, column_mapping: dict[str, str], **_: Any) -> ColumnsInMemory:
        """The same columns, those in `column_mapping` under their new names."""
        self._check(list(column_mapping))
        names = {column_mapping.get(n, n): source for n, source in self._names.items()}
        return ColumnsInMemory(self._dataset, self._rows, names, self._lists)

    def map(self, function: Callable[[dict[str, Any]], dict[str, Any] | None], **options: Any) -> ColumnsInMemory | Any:
        """`Dataset.map` of a row function, answered from the lists: each row's output updates that row and
        adds the columns it names, as `datasets` merges them. mteb standardises every retrieval corpus so
        (`_corpus_to_dict`): 20,000 documents took 4.0 s through `datasets` on one core, and a full C-MTEB run
        maps about a million. Batched, indexed or column-removing maps go to `datasets` itself."""
        if not set(options) <= MAP_OPTIONS_ANSWERED:
            return self.materialized().map(function, **options)
        columns: dict[str, list[Any]] = {name: [] for name in self._names}
        for k, row in enumerate(self):  # one row at a time: a million documents' dicts are never held at once
            row.update(function(dict(row)) or {})
            for name in row:
                if name not in columns:  # a column first named at row k: the rows before it have none
                    columns[name] = [None] * k
            for name, values in columns.items():
                values.append(row.get(name))
        return ColumnsInMemory.from_lists(columns)

    def materialized(self) -> Any:
        """The equivalent `datasets.Dataset` (for anything this view does not answer itself)."""
        if self._dataset is None:
            from datasets import Dataset

            self._dataset = Dataset.from_dict(self._lists)
        dataset = self._dataset if self._rows is None else self._dataset.select(self._rows)
        dataset = dataset.select_columns(list(self._names.values()))
        return dataset.rename_columns({s: n for n, s in self._names.items() if s != n})

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.materialized(), name)

    def _column(self, name: str) -> list[Any]:
        self._check([name])
        source = self._names[name]
        if source not in self._lists:
            self._lists[source] = column_values(self._dataset, source)
        return self._lists[source]

    def _check(self, names: list[str]) -> None:
        missing = [n for n in names if n not in self._names]
        if missing:
            raise ValueError(f"Column(s) {missing} not in the dataset (columns: {self.column_names})")


def column_values(dataset: Any, column: str) -> list[Any]:
    """A column as a list: a `ColumnsInMemory`'s own, a `datasets.Dataset`'s read in one Arrow slice
    (formatted as iterating the column formats each row; 50,000 rows: 0.03 s, against 1.2 s iterated)."""
    if isinstance(dataset, ColumnsInMemory):
        return dataset[column]
    return dataset.select_columns([column])[:][column]


def text_rows_in_memory(data: Any, task_metadata: Any, prompt_type: Any) -> Any:
    """A `datasets.Dataset` of a task's texts as a view (same rows, same order), for mteb's code to read its
    columns and map its rows from lists; data of other modalities, or not a `Dataset`, as it is."""
    from datasets import Dataset

    if isinstance(data, Dataset) and task_metadata.get_modalities(prompt_type) == ["text"]:
        return ColumnsInMemory(data)
    return data
