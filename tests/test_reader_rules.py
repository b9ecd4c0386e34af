"""How result folders are read, rule by rule, on folders written by hand: both JSON shapes, what a folder's
run record vouches for, and each refusal with its message. (tests/test_integrity.py and
tests/test_legacy_layouts.py read what real runs wrote.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from results_fixtures import mteb2_result, write_model, write_run_record

from cmteb.errors import CmtebError
from cmteb.results.files import CHECKSUMS, MODEL_META, REWRITING, RUN_RECORD, file_checksums
from cmteb.results.reader import (
    EXTERNAL,
    UNVERIFIED,
    VERIFIED,
    ModelResults,
    collect_results,
    parse_result_data,
    parse_result_file,
    refuse_unverified,
    result_file_score,
)
from cmteb.tasks.protocols import resolve_protocol


def _write(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data) if not isinstance(data, str) else data, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "is not valid JSON (Expecting property name"),
        ([1, 2], "does not hold a result object: fix or remove it"),
        ({"scores": {"test": {"accuracy": 0.5}}}, "scores of split 'test' are not a list: fix or remove it"),
        ({"mteb_dataset_name": "ATEC", "test": 0.5}, "holds no scores in a known shape: fix or remove it"),
    ],
    ids=["not-json", "not-an-object", "split-not-a-list", "no-known-shape"],
)
def test_a_file_that_is_no_result_is_named_with_what_is_wrong(content, message, tmp_path):
    path = _write(tmp_path / "ATEC.json", content)
    with pytest.raises(CmtebError) as err:
        parse_result_file(path)
    assert str(err.value).startswith(f"result file {path}") and message in str(err.value)


def test_metadata_and_predictions_are_not_results(tmp_path):
    assert parse_result_file(_write(tmp_path / MODEL_META, {"name": "x"})) is None
    assert parse_result_file(_write(tmp_path / "ATEC_predictions.json", {"x": 1})) is None
    assert parse_result_file(_write(tmp_path / "cmteb_run.json", {"tasks": {}})) is None


def test_an_mteb2_file_gives_each_splits_entries_and_subsets():
    data = {
        "dataset_revision": "abc",
        "scores": {"test": [
            {"cosine_spearman": 0.5, "hf_subset": "zh", "languages": ["cmn-Hans"], "nested": {"x": 1}, "flag": True},
            {"cosine_spearman": 0.7},
        ]},
        "cmteb": {"protocol": "cmteb-31"},
    }  # fmt: skip
    parsed = parse_result_data(data, Path("some/STS22.json"))
    assert (parsed.task_name, parsed.dataset_revision, parsed.shape, parsed.protocol) == (
        "STS22", "abc", "mteb2", "cmteb-31",
    )  # fmt: skip
    assert parsed.splits == {"test": [{"cosine_spearman": 0.5, "nested_x": 1.0}, {"cosine_spearman": 0.7}]}
    assert parsed.subsets == {"test": ["zh", "default"]}
    assert parse_result_data({**data, "cmteb": "not a block"}, Path("a.json")).protocol is None


def test_an_mteb1_file_reads_its_chinese_subset_and_renames_its_metrics(tmp_path):
    data = {
        "mteb_dataset_name": "STS22",
        "dataset_revision": "r0",
        "test": {
            "en": {"cos_sim": {"spearman": 0.1}},
            "zh": {"cos_sim": {"spearman": 0.5, "pearson": 0.4}, "evaluation_time": 3},
        },
        "validation": "not a block",
        "dev": {"cos_sim": {"spearman": 0.6}},
    }
    parsed = parse_result_file(_write(tmp_path / "x.json", data))
    assert (parsed.task_name, parsed.shape, parsed.protocol, parsed.subsets) == ("STS22", "mteb1", None, {})
    assert parsed.splits == {
        "test": [{"cosine_spearman": 0.5, "cosine_pearson": 0.4, "evaluation_time": 3.0}],
        "dev": [{"cosine_spearman": 0.6}],
    }
    named = parse_result_file(_write(tmp_path / "TNews.json", {"test": {"accuracy": 0.5}}))
    assert named.task_name == "TNews"  # no name inside: the file's


def _folder(root: Path, name: str = "org/m", revision: str = "r1") -> Path:
    return write_model(root, name, revision, {"ATEC": {"cosine_spearman": 0.5}, "TNews": {"accuracy": 0.4}})


def _recorded_tasks(folder: Path, **entry) -> dict:
    return {t: {**entry, CHECKSUMS: file_checksums([folder / f"{t}.json"])} for t in ("ATEC", "TNews")}


def test_a_run_record_says_where_the_data_came_from_and_how_the_run_differed(tmp_path):
    folder = _folder(tmp_path / "a")
    tasks = _recorded_tasks(folder)
    tasks["ATEC"]["data_source"], tasks["TNews"]["data_source"] = "local", "samples"
    header = {"variant": {"max_length": 64}, "model_argument": "m", "model_path": "/x/m", "kind": "lexical baseline"}
    write_run_record(folder, tasks, **header)
    [found] = collect_results([tmp_path / "a"])
    assert (found.data, found.variant, found.asked_as, found.baseline, found.verification) == (
        "samples", {"max_length": 64}, ("m", "/x/m"), True, VERIFIED,
    )  # fmt: skip
    tasks["TNews"]["data_source"] = "hub"
    write_run_record(folder, tasks, variant="old", model_argument="", kind="embedder")
    [found] = collect_results([tmp_path / "a"])
    assert (found.data, found.variant, found.asked_as, found.baseline) == ("local", {}, (), False)
    tasks["ATEC"]["data_source"] = None
    for entry in tasks.values():
        entry["subsample"] = 20  # a record from before runs kept their variant
    write_run_record(folder, tasks)
    [found] = collect_results([tmp_path / "a"])
    assert (found.data, found.variant) == ("hub", {"subsample": 20})
    tasks["ATEC"]["subsample"] = 30
    write_run_record(folder, tasks)
    assert collect_results([tmp_path / "a"])[0].variant == {}


def test_who_vouches_for_a_folder(tmp_path):
    plain = _folder(tmp_path / "plain")
    assert collect_results([tmp_path / "plain"])[0].verification == EXTERNAL
    data = json.loads((plain / "ATEC.json").read_text(encoding="utf-8"))
    _write(plain / "ATEC.json", {**data, "cmteb": {"protocol": "cmteb-31"}})
    assert collect_results([tmp_path / "plain"])[0].verification == UNVERIFIED  # cmteb's file, no record
    _write(plain / RUN_RECORD, "{ damaged")
    found = collect_results([tmp_path / "plain"])[0]
    assert found.verification == UNVERIFIED and found.protocol == "cmteb-31"


def test_a_folder_mixing_protocols_is_refused(tmp_path):
    folder = _folder(tmp_path)
    tasks = _recorded_tasks(folder, protocol="flagembedding-2023")
    tasks["TNews"]["protocol"] = "cmteb-31"
    write_run_record(folder, tasks)
    with pytest.raises(CmtebError) as err:
        collect_results([tmp_path])
    assert str(err.value) == (
        f"{folder} mixes results of protocols ['cmteb-31', 'flagembedding-2023']: keep one protocol per folder"
    )
    write_run_record(folder, _recorded_tasks(folder, protocol="cmteb-31"))
    assert collect_results([tmp_path])[0].protocol == "cmteb-31"


def test_a_file_changed_after_its_run_is_refused_and_an_interrupted_rerun_is_named(tmp_path):
    folder = _folder(tmp_path)
    tasks = _recorded_tasks(folder)
    write_run_record(folder, tasks)
    _write(folder / "ATEC.json", mteb2_result("ATEC", {"test": {"cosine_spearman": 0.9}}))
    with pytest.raises(CmtebError) as err:
        collect_results([tmp_path])
    assert str(err.value) == (
        f"{folder / 'ATEC.json'}: ATEC.json changed after it was written (its checksum differs from the run "
        "record): rerun ATEC (`cmteb run ... --tasks ATEC`) or restore the file"
    )
    tasks["ATEC"][REWRITING] = "2026-12-07T10:00:00+00:00"
    write_run_record(folder, tasks)
    with pytest.raises(CmtebError) as err:
        collect_results([tmp_path])
    assert str(err.value) == (
        f"{folder / 'ATEC.json'}: a rerun of ATEC stopped while writing its files (killed or crashed): rerun it "
        "(`cmteb run ... --tasks ATEC`, the same command) to finish"
    )


def test_names_and_revisions_come_from_the_metadata_then_the_folders(tmp_path):
    folder = _folder(tmp_path / "a", "org/m", "r1")
    _write(folder / MODEL_META, {"name": "org/real", "revision": "abc", "embed_dim": 768})
    [found] = collect_results([tmp_path / "a"])
    assert (found.model, found.revision, found.embedding_dim) == ("org/real", "abc", 768)
    _write(folder / MODEL_META, {"revision": "no_revision_available", "embed_dim": "wide"})
    [found] = collect_results([tmp_path / "a"])
    assert (found.model, found.revision, found.embedding_dim) == ("org/m", None, None)
    _write(folder / MODEL_META, "{")
    with pytest.raises(CmtebError, match=rf"^{folder / MODEL_META} is not valid JSON \(.*\): fix or remove it$"):
        collect_results([tmp_path / "a"])
    flag = tmp_path / "flag" / "bge-large-zh"  # FlagEmbedding's scripts: <root>/<model>/<Task>.json
    _write(flag / "ATEC.json", mteb2_result("ATEC", {"test": {"cosine_spearman": 0.5}}))
    [found] = collect_results([tmp_path / "flag"])
    assert (found.model, found.revision) == ("bge-large-zh", None)
    [found] = collect_results([flag])  # the model's folder itself
    assert (found.model, found.revision) == ("flag", "bge-large-zh")


def test_hidden_folders_and_the_record_folder_hold_no_results(tmp_path):
    folder = _folder(tmp_path)
    write_run_record(folder, _recorded_tasks(folder))
    _write(folder / "cmteb" / "ATEC.json", mteb2_result("ATEC", {"test": {"cosine_spearman": 0.1}}))
    _write(tmp_path / ".trash" / "x" / "ATEC.json", mteb2_result("ATEC", {"test": {"cosine_spearman": 0.1}}))
    assert [r.folder for r in collect_results([tmp_path])] == [folder]
    with pytest.raises(CmtebError) as err:
        collect_results([tmp_path / "nope"])
    assert str(err.value) == (
        f"results folder {tmp_path / 'nope'} does not exist: pass a folder written by `cmteb run` or `mteb run`"
    )


def test_a_local_model_answers_to_its_path_however_written(tmp_path, monkeypatch):
    model_dir = tmp_path / "models" / "mine"
    model_dir.mkdir(parents=True)
    (tmp_path / "other").mkdir()
    results = ModelResults("local/mine", "r1", tmp_path, None, {}, asked_as=("models/mine", str(model_dir)))
    monkeypatch.chdir(tmp_path)
    assert results.answers_to("local/mine") and results.answers_to("models/mine")
    assert results.answers_to("./models/../models/mine") and results.answers_to(str(model_dir))
    assert not results.answers_to(str(tmp_path / "other"))  # a folder, but another one
    assert not results.answers_to("models/absent")


def test_a_file_without_the_protocols_score_scores_nan(tmp_path):
    protocol = resolve_protocol("cmteb-31")
    spec = protocol.get("ATEC")
    good = _write(tmp_path / "ATEC.json", mteb2_result("ATEC", {s: {"cosine_spearman": 0.5} for s in spec.splits}))
    assert result_file_score(protocol, spec, good) == pytest.approx(0.5)
    other = _write(tmp_path / "b" / "ATEC.json", mteb2_result("ATEC", {"test": {"accuracy": 0.5}}))
    assert str(result_file_score(protocol, spec, other)) == "nan"
    meta = _write(tmp_path / MODEL_META, {"name": "x"})
    assert str(result_file_score(protocol, spec, meta)) == "nan"


def test_unverified_results_are_refused_in_one_line_unless_allowed(tmp_path):
    results = ModelResults("org/m", "r1", tmp_path, None, {}, verification=UNVERIFIED)
    with pytest.raises(CmtebError) as err:
        refuse_unverified([results], allow=False)
    assert str(err.value) == (
        f"{tmp_path} holds cmteb results without an intact run record (cmteb/run.json missing or damaged), so "
        "nothing vouches for its scores: rerun the tasks into a fresh --output-dir, or pass --allow-unverified to "
        "show them marked unverified"
    )
    refuse_unverified([results], allow=True)
    refuse_unverified([ModelResults("org/m", "r1", tmp_path, None, {}, verification=EXTERNAL)], allow=False)


def test_a_task_score_by_another_metric_and_of_a_task_the_protocol_lacks(tmp_path):
    folder = _folder(tmp_path)
    scores = {"cosine_spearman": 0.5, "cosine_pearson": 0.25}
    _write(folder / "ATEC.json", mteb2_result("ATEC", {"validation": scores, "test": scores}))
    [found] = collect_results([tmp_path])
    assert found.task_score("ATEC") == pytest.approx(0.5)
    assert found.task_score("ATEC", "cosine_pearson") == pytest.approx(0.25)
    assert found.task_score("AFQMC") is None and found.task_score("NoSuchTask") is None


def test_an_mteb1_reranking_file_under_its_mteb1_name_is_renamed_as_reranking(tmp_path):
    """FlagEmbedding's scripts wrote CMedQAv1 (mteb 2: CMedQAv1-reranking): its map and mrr are MAP@1000 and
    MRR@10, known by the type of the task the alias names."""
    _write(tmp_path / "bge" / "CMedQAv1.json", {"mteb_dataset_name": "CMedQAv1", "test": {"map": 0.5, "mrr": 0.6}})
    [found] = collect_results([tmp_path])
    parsed = found.tasks["CMedQAv1-reranking"]
    assert parsed.splits == {"test": [{"map_at_1000": 0.5, "mrr_at_10": 0.6}]}


def test_an_mteb1_file_keeps_its_path_revision_name_and_train_split(tmp_path):
    data = {"task_name": "TNews", "dataset_revision": "r9", "train": {"accuracy": 0.4}, "test": {"accuracy": 0.5}}
    path = _write(tmp_path / "x.json", data)
    parsed = parse_result_file(path)
    assert (parsed.task_name, parsed.path, parsed.dataset_revision) == ("TNews", path, "r9")
    assert parsed.splits == {"test": [{"accuracy": 0.5}], "train": [{"accuracy": 0.4}]}


def test_a_folder_with_a_record_keeps_to_what_it_lists_and_says_what_it_left(tmp_path, capsys):
    """Files in name order: a copy of a listed task's result and a task the record does not list are left with a
    note each; the files after them are still read."""
    folder = tmp_path / "run"
    for name, task in (("AFQMC", "AFQMC"), ("ATEC.copy", "ATEC"), ("ATEC", "ATEC"), ("TNews", "TNews")):
        _write(folder / f"{name}.json", mteb2_result(task, {"test": {"cosine_spearman": 0.5}}))
    _write(folder / "Aaa.json", {"task_name": "NotATask", "scores": {"test": [{"x": 1.0}]}})
    tasks = {t: {CHECKSUMS: file_checksums([folder / f"{t}.json"])} for t in ("ATEC", "TNews")}
    write_run_record(folder, tasks)
    [found] = collect_results([folder])
    assert sorted(found.tasks) == ["ATEC", "TNews"]
    record = folder / RUN_RECORD
    assert capsys.readouterr().err.splitlines() == [
        f"cmteb: warning: {folder / 'AFQMC.json'} ignored: the run record {record} does not list AFQMC",
        f"cmteb: warning: {folder / 'ATEC.copy.json'} ignored: the run record {record} lists another file for ATEC",
    ]


def test_subfolders_beside_a_run_record_are_read_and_nested_folders_keep_their_revision(tmp_path):
    root = tmp_path / "out"
    _write(root / "ATEC.json", mteb2_result("ATEC", {"test": {"cosine_spearman": 0.5}}))
    write_run_record(root, {"ATEC": {CHECKSUMS: file_checksums([root / "ATEC.json"])}})
    nested = _folder(root / "zoo" / "older")  # <root>/zoo/older/org__m/r1
    (nested / MODEL_META).unlink()  # the folders alone name it
    found = {str(r.folder): r for r in collect_results([root])}
    assert set(found) == {str(root), str(nested)}
    assert (found[str(nested)].model, found[str(nested)].revision) == ("org/m", "r1")


def test_a_damaged_record_makes_even_plain_mteb_files_unverified(tmp_path):
    folder = _folder(tmp_path)
    _write(folder / RUN_RECORD, "{ damaged")
    assert collect_results([tmp_path])[0].verification == UNVERIFIED
