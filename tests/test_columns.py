"""Columns read into lists (`cmteb.columns`, `cmteb.mteb_hooks.IN_MEMORY_MIXINS`): mteb's evaluation of
classification, legacy clustering, pair classification and STS gives exactly plain mteb's results, without
reading a lazy `datasets` column row by row."""

from __future__ import annotations

import warnings

import mteb
import pytest
from datasets import Dataset
from datasets.arrow_dataset import Column

from cmteb.columns import ColumnsInMemory
from cmteb.tasks.build import build_task
from cmteb.tasks.registry import load_registry


@pytest.fixture
def table() -> Dataset:
    return Dataset.from_dict(
        {
            "text": [f"文本{i}" for i in range(12)],
            "label": [i % 3 for i in range(12)],
            "tags": [[i, i + 1] for i in range(12)],
        }
    )


def test_a_view_reads_as_the_dataset_reads(table):
    view = ColumnsInMemory(table)
    assert len(view) == 12 and view.column_names == ["text", "label", "tags"]
    assert view["label"] == list(table["label"]) and view["tags"] == list(table["tags"])
    assert view[5] == table[5]
    assert list(view) == list(table)
    picked = view.select([7, 2, 9, 2]).select([3, 0, 2])
    assert picked["text"] == table.select([7, 2, 9, 2]).select([3, 0, 2])["text"][:]
    assert len(picked) == 3 and picked[1] == table[7]
    renamed = picked.select_columns(["label", "text"]).rename_columns({"text": "sentences"})
    assert renamed.column_names == ["label", "sentences"]
    assert renamed["sentences"] == picked["text"]
    assert renamed.materialized().to_dict() == {"label": picked["label"], "sentences": picked["text"]}
    assert renamed.features == renamed.materialized().features  # anything else: the equivalent Dataset


def test_a_view_names_a_missing_column(table):
    with pytest.raises(ValueError, match=r"\['title'\] not in the dataset"):
        ColumnsInMemory(table)["title"]
    with pytest.raises(ValueError, match="not in the dataset"):
        ColumnsInMemory(table).select_columns(["text", "title"])


def test_a_view_hands_out_copies(table):
    view = ColumnsInMemory(table)
    view["label"].append(99)
    assert view["label"] == list(table["label"])


@pytest.fixture
def corpus() -> Dataset:
    """Documents as mteb's retrieval tasks hold them: some with a title, some with an empty one."""
    return Dataset.from_dict(
        {
            "id": [f"d{i}" for i in range(9)],
            "title": ["标题" if i % 3 == 0 else "" for i in range(9)],
            "text": [f" 文本{i} " for i in range(9)],
        }
    )


def _as_columns(data) -> dict:
    return {name: list(data[name]) for name in data.column_names}


@pytest.mark.parametrize("rows", [None, [8, 0, 3, 3, 5]])
def test_a_view_maps_rows_as_datasets_maps_them(corpus, rows):
    from mteb._create_dataloaders import _corpus_to_dict

    view = ColumnsInMemory(corpus) if rows is None else ColumnsInMemory(corpus).select(rows)
    dataset = corpus if rows is None else corpus.select(rows)
    mapped = view.map(_corpus_to_dict, desc="Standardizing text corpus format", num_proc=None)
    expected = dataset.map(_corpus_to_dict)
    assert isinstance(mapped, ColumnsInMemory)  # answered from the lists, not by `datasets`
    assert set(mapped.column_names) == set(expected.column_names) == {"id", "title", "text", "body"}
    assert _as_columns(mapped) == _as_columns(expected)  # outputs update rows; titles kept where not returned
    assert _as_columns(mapped.materialized()) == _as_columns(expected)
    assert mapped.select([1, 0])["text"] == list(expected.select([1, 0])["text"])


def test_a_map_a_view_does_not_answer_goes_to_datasets(corpus):
    def upper(batch):
        return {"text": [t.upper() for t in batch["text"]]}

    mapped = ColumnsInMemory(corpus).map(upper, batched=True)
    assert isinstance(mapped, Dataset)
    assert _as_columns(mapped) == _as_columns(corpus.map(upper, batched=True))


@pytest.fixture
def row_reads(monkeypatch):
    """Counts reads of lazy `datasets` columns one row at a time (iteration or an integer index)."""
    counts = {"rows": 0}
    iterate, index = Column.__iter__, Column.__getitem__

    def counted_iter(self):
        for value in iterate(self):
            counts["rows"] += 1
            yield value

    def counted_getitem(self, key):
        counts["rows"] += isinstance(key, int)
        return index(self, key)

    monkeypatch.setattr(Column, "__iter__", counted_iter)
    monkeypatch.setattr(Column, "__getitem__", counted_getitem)
    return counts


def _evaluate(task):
    model = mteb.get_model("mteb/baseline-random-encoder")  # an embedding per text, from the text's hash
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = mteb.evaluate(model, task, cache=None, overwrite_strategy="always", show_progress_bar=False)
    return result.task_results[0].scores


@pytest.mark.parametrize("name", ["TNews", "Waimai", "CLSClusteringS2S", "Ocnli", "ATEC"])
def test_in_memory_columns_give_plain_mtebs_results_without_row_reads(name, samples_dir, row_reads):
    spec = load_registry().get(name)
    plain = _evaluate(build_task(spec, samples_dir, in_memory=False))
    plain_reads = row_reads["rows"]
    row_reads["rows"] = 0
    ours = _evaluate(build_task(spec, samples_dir))
    assert ours == plain  # every metric of every split and experiment, exactly
    assert plain_reads > 0, "plain mteb no longer reads rows here: the hook may be unneeded"
    assert row_reads["rows"] == 0


def test_pairs_in_the_one_row_layout_are_expanded_as_mteb_expands_them(samples_dir, row_reads):
    spec = load_registry().get("Cmnli")  # its sample keeps mteb's v1 layout: one row of lists
    plain = _evaluate(build_task(spec, samples_dir, in_memory=False))
    row_reads["rows"] = 0
    task = build_task(spec, samples_dir)
    task.load_data()
    assert len(task.dataset["validation"]) == 1
    assert _evaluate(task) == plain
    assert row_reads["rows"] == 0
