"""Retrieval and reranking data in mteb's own layout: cmteb reads the qrels in one pass over their columns
(`cmteb.mteb_hooks.QrelsInOnePass`) and must load exactly what mteb's loader loads."""

from __future__ import annotations

import shutil

import polars
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from mteb.abstasks import retrieval

from cmteb.tasks.build import build_task, load_task_data
from cmteb.tasks.mirror import mirror_dataset_cache
from cmteb.tasks.protocols import resolve_protocol
from cmteb.tasks.registry import load_registry

PROTOCOL = resolve_protocol(None)
#: The default protocol's retrieval and reranking tasks, all in mteb's own layout.
MTEB_LAYOUT = [
    s.name
    for s in PROTOCOL.select(None, None)
    if s.type in ("Retrieval", "Reranking") and s.loader is None and not PROTOCOL.is_extra(s.name)
]


def _loaded(name, data_dir, *, in_memory):
    spec = load_registry().get(name)
    task = build_task(spec, data_dir, in_memory=in_memory)
    load_task_data(task, spec, data_dir)
    return task


def _same_split_data(ours, mtebs):
    assert ours["relevant_docs"] == mtebs["relevant_docs"]
    for query, documents in mtebs["relevant_docs"].items():  # each query's documents in mteb's order too
        assert list(ours["relevant_docs"][query].items()) == list(documents.items())
    assert ours["corpus"].to_list() == mtebs["corpus"].to_list()
    assert ours["queries"].to_list() == mtebs["queries"].to_list()
    assert ours["top_ranked"] == mtebs["top_ranked"]


def _refuse_group_by(*args, **kwargs):
    raise AssertionError("the qrels went through polars' group_by (mteb's per-query groups)")


@pytest.mark.parametrize("name", MTEB_LAYOUT)
def test_qrels_read_in_one_pass_are_mtebs(name, samples_dir, monkeypatch):
    mtebs = _loaded(name, samples_dir, in_memory=False)
    with monkeypatch.context() as patched:
        patched.setattr(polars.DataFrame, "group_by", _refuse_group_by)
        ours = _loaded(name, samples_dir, in_memory=True)
    for split, data in mtebs.dataset["default"].items():
        _same_split_data(ours.dataset["default"][split], data)
    assert retrieval.RetrievalDatasetLoader.__module__.startswith("mteb."), "mteb's loader is back after the load"


def test_a_repeated_qrel_keeps_its_last_score_as_in_mteb(samples_dir, tmp_path):
    """A (query, document) pair listed twice: mteb's dict keeps the later score; so does cmteb's."""
    mirror = tmp_path / "mirror"
    shutil.copytree(samples_dir / "mteb" / "T2Retrieval", mirror / "mteb" / "T2Retrieval")
    path = next((mirror / "mteb" / "T2Retrieval" / "data").glob("dev-*.parquet"))
    qrels = pq.read_table(path)
    first = qrels.slice(0, 1).to_pylist()[0]
    repeated = pa.Table.from_pylist([{**first, "score": first["score"] + 5}], schema=qrels.schema)
    pq.write_table(pa.concat_tables([qrels, repeated]), path)
    with mirror_dataset_cache("a-repeated-qrel"):  # datasets' cache would serve the sample's rows
        mtebs = _loaded("T2Retrieval", mirror, in_memory=False)
        ours = _loaded("T2Retrieval", mirror, in_memory=True)
    docs = ours.dataset["default"]["dev"]["relevant_docs"][first["query-id"]]
    assert docs[first["corpus-id"]] == first["score"] + 5
    _same_split_data(ours.dataset["default"]["dev"], mtebs.dataset["default"]["dev"])
