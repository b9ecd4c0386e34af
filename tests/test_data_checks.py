"""Data that loads but would break the evaluator is refused in one line, naming task, split, column and
row, before any model is loaded, and nothing is written."""

from __future__ import annotations

import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest


def _rewrite(mirror, repo, split, change):
    """Apply `change` (pyarrow Table -> Table) to one split file (`<config folder>/<split>`) of a copied mirror."""
    (path,) = list((mirror / repo).glob(f"{split}-*.parquet"))
    pq.write_table(change(pq.read_table(path)), path)


def _set(table, column, values):
    return table.set_column(table.column_names.index(column), column, pa.array(values))


def _none_in_row_3(table):
    texts = table.column("sentence1").to_pylist()
    texts[3] = None
    return _set(table, "sentence1", texts)


def _bytes_text(table):
    return _set(table, "sentence1", [t.encode() for t in table.column("sentence1").to_pylist()])


def _scores_as_strings(table):
    return _set(table, "score", [str(v) for v in table.column("score").to_pylist()])


def _one_label(table):
    return _set(table, "label", [0] * table.num_rows)


def _clashing_ids(table):
    ids = table.column("id").to_pylist()
    ids[1] = ids[0]  # two documents, one id, different texts
    return _set(table, "id", ids)


def _nan_score(table):
    return _set(table, "score", [float("nan"), *table.column("score").to_pylist()[1:]])


def _constant_score(table):
    return _set(table, "score", [3.0] * table.num_rows)


def _invalid_utf8_row_2(table):
    texts = [t.encode() for t in table.column("sentence1").to_pylist()]
    texts[2] = texts[2][:1] + b"\xff" + texts[2][1:]  # bytes no UTF-8 decoder reads, as a bad JSON-lines file holds
    return _set(table, "sentence1", pa.array(texts, pa.binary()).view(pa.string()))


def _one_label_per_set(table):
    return _set(table, "labels", [["a"] * len(labels) for labels in table.column("labels").to_pylist()])


def _labels_short(table):
    return _set(table, "labels", [labels[:-3] for labels in table.column("labels").to_pylist()])


def _integer_ids(table):
    return _set(table, "id", pa.array(range(table.num_rows), pa.int64()))


def _query_without_candidates(table):
    return table.slice(1)


def _candidate_not_in_corpus(table):
    lists = table.column("corpus-ids").to_pylist()
    return _set(table, "corpus-ids", [[*lists[0], "nope"], *lists[1:]])


CASES = [
    (
        "AFQMC",
        "C-MTEB/AFQMC",
        "data/validation",
        lambda t: t.drop_columns(["sentence2"]),
        "column 'sentence2': missing",
    ),
    ("AFQMC", "C-MTEB/AFQMC", "data/validation", _none_in_row_3, "column 'sentence1': row 3 has no value"),
    ("AFQMC", "C-MTEB/AFQMC", "data/validation", _bytes_text, "column 'sentence1': holds binary values"),
    ("AFQMC", "C-MTEB/AFQMC", "data/validation", _scores_as_strings, "column 'score': holds string values"),
    ("TNews", "C-MTEB/TNews-classification", "data/train", _one_label, "fewer than 2 distinct labels"),
    ("T2Retrieval", "mteb/T2Retrieval", "corpus/dev", _clashing_ids, "1 document ids name different texts"),
    ("STSB", "mteb/STSB", "data/test", _nan_score, "column 'score': row 0 is NaN"),
    ("STSB", "mteb/STSB", "data/test", _constant_score, "every gold score is 3.0: Spearman's rho is undefined"),
    ("AFQMC", "C-MTEB/AFQMC", "data/validation", _invalid_utf8_row_2, "column 'sentence1': row 2 is not valid UTF-8"),
    ("CLSClusteringS2S", "C-MTEB/CLSClusteringS2S", "data/test", _one_label_per_set, "fewer than 2 distinct labels"),
    ("CLSClusteringS2S", "C-MTEB/CLSClusteringS2S", "data/test", _labels_short, "row 0 has 61 labels for 64 texts"),
    ("T2Retrieval", "mteb/T2Retrieval", "corpus/dev", _integer_ids, "column 'id': holds int64 values where text"),
    ("T2Reranking", "mteb/T2Reranking", "top_ranked/dev", _query_without_candidates, "1 queries with qrels have no"),
    ("T2Reranking", "mteb/T2Reranking", "top_ranked/dev", _candidate_not_in_corpus, "names 'nope', not in the corpus"),
]


@pytest.mark.parametrize(
    ("task", "repo", "split", "change", "message"),
    CASES,
    ids=[
        "missing-column",
        "none-text",
        "bytes-text",
        "string-scores",
        "one-label",
        "duplicate-ids",
        "nan-gold",
        "constant-gold",
        "invalid-utf8",
        "one-label-clusters",
        "labels-short",
        "integer-ids",
        "query-without-candidates",
        "candidate-not-in-corpus",
    ],
)
def test_broken_data_is_one_line_before_the_model_loads(
    task, repo, split, change, message, tiny_bert, samples_dir, tmp_path, capsys, monkeypatch
):
    from cmteb.cli import main

    mirror = tmp_path / "mirror"
    shutil.copytree(samples_dir, mirror)
    _rewrite(mirror, repo, split, change)

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the data was checked")

    monkeypatch.setattr("cmteb.models.encoder.BGEEncoder.load", no_model)
    out = tmp_path / "out"
    args = ["run", "--model", str(tiny_bert), "--tasks", task, "--data-dir", str(mirror), "--output-dir", str(out)]
    assert main([*args, "--no-progress", "--protocol", "mteb-cmn-v1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"cmteb: error: task {task}, split ") and message in err and err.count("\n") == 1, err
    assert not out.exists(), "nothing is written for bad input"


def test_the_bundled_samples_pass_every_check(samples_dir):
    from cmteb.tasks.build import build_task, load_task_data
    from cmteb.tasks.protocols import load_protocols, resolve_protocol

    # Protocols share most of their task specs: each distinct one is checked once.
    specs = dict.fromkeys(spec for name in load_protocols() for spec in resolve_protocol(name).all_tasks)
    assert len(specs) > 31
    for spec in specs:
        load_task_data(build_task(spec, samples_dir), spec, samples_dir)  # raises on a problem
