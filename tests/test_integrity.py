"""What is on disk is never trusted beyond what it was made from: a changed local model is evaluated afresh,
and a local model is filed under its own folder's name."""

from __future__ import annotations

import json
import shutil

import pytest

from cmteb.report.summary import summary_table
from cmteb.runner import run


def _atec(model, samples_dir, out, *extra, task="ATEC"):
    """`cmteb run` arguments for one task of the samples (ATEC unless told)."""
    return [
        "run",
        "--model",
        str(model),
        "--tasks",
        task,
        "--data-dir",
        str(samples_dir),
        "--output-dir",
        str(out),
        *extra,
    ]


def _copy(model, target):
    shutil.copytree(model, target)
    return target


def _edit_json(path, change):
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def _swap_two_tokens(data):
    vocab = data["model"]["vocab"]
    # Two characters the AFQMC sample uses: their ids, and so their embeddings, trade places.
    a, b = "的", "我"
    vocab[a], vocab[b] = vocab[b], vocab[a]


@pytest.mark.parametrize(
    ("file", "change"),
    [
        ("config.json", lambda c: c.update(hidden_act="relu")),
        ("tokenizer.json", _swap_two_tokens),
    ],
    ids=["config", "tokenizer"],
)
def test_a_changed_local_model_is_never_answered_from_old_results(file, change, tiny_bert, samples_dir, tmp_path):
    model = _copy(tiny_bert, tmp_path / "m")
    common = dict(tasks=["AFQMC"], data_dir=samples_dir, show_progress=False, cache_dir=tmp_path / "cache")
    before = run(str(model), output_dir=tmp_path / "out", **common)
    (model / "README.md").write_text("notes that change no embedding\n")
    unchanged = run(str(model), output_dir=tmp_path / "out", **common)
    assert unchanged.revision == before.revision and unchanged.outcomes[0].status == "skipped"
    _edit_json(model / file, change)
    same_folder = run(str(model), output_dir=tmp_path / "out", **common)
    new_folder = run(str(model), output_dir=tmp_path / "new", **common)
    no_cache = run(str(model), output_dir=tmp_path / "fresh", **{**common, "use_cache": False})
    assert same_folder.revision != before.revision
    assert same_folder.outcomes[0].status == "ran"  # neither skipped nor reused
    assert new_folder.outcomes[0].status == "reused"  # what same_folder evaluated for the changed model, stored
    expected = no_cache.outcomes[0].score
    assert expected != pytest.approx(before.outcomes[0].score, abs=1e-6), "the change must move the score"
    assert same_folder.outcomes[0].score == pytest.approx(expected, abs=1e-9)
    assert new_folder.outcomes[0].score == pytest.approx(expected, abs=1e-9)


def test_a_local_model_is_filed_under_its_folder_not_its_base_model(tiny_bert, samples_dir, tmp_path):
    model = _copy(tiny_bert, tmp_path / "my-finetune")
    _edit_json(model / "config.json", lambda c: c.update(_name_or_path="uer/chinese_roberta_L-4_H-512"))
    common = dict(tasks=["AFQMC"], data_dir=samples_dir, show_progress=False, output_dir=tmp_path / "out")
    summary = run(str(model), **common)
    assert summary.model_name == "local/my-finetune"
    assert summary.output_dir.parent.name == "local__my-finetune"
    assert "local/my-finetune after its folder" in summary.naming and "--model-name" in summary.naming
    assert summary.naming in str(summary_table(summary).caption)
    named = run(str(model), model_name="my-org/zh-embedder", **common)
    assert named.model_name == "my-org/zh-embedder" and "after --model-name" in named.naming


def _embeddings_only(tiny_bert, target):
    """A copy of the tiny BERT whose checkpoint holds only the embedding tensors."""
    from safetensors.torch import load_file, save_file

    model = _copy(tiny_bert, target)
    weights = load_file(model / "model.safetensors")
    save_file({k: v for k, v in weights.items() if k.startswith("embeddings.")}, model / "model.safetensors")
    return model


def test_a_checkpoint_with_missing_weights_stops_the_run(tiny_bert, samples_dir, tmp_path, capsys):
    from cmteb.cli import main
    from cmteb.results.files import read_run_record

    model = _embeddings_only(tiny_bert, tmp_path / "partial")
    out = tmp_path / "out"
    args = _atec(model, samples_dir, out, task="AFQMC")
    assert main([*args, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing" in err and "encoder.layer.0" in err and "--allow-missing-weights" in err
    assert not list(out.rglob("*.json")), "nothing written"
    assert main([*args, "--no-progress", "--allow-missing-weights"]) == 0
    record = read_run_record(next(out.rglob("AFQMC.json")).parent)
    missing = record["weights_not_matched"]["missing"]
    assert missing and all(k.startswith(("encoder.", "pooler.")) for k in missing)


def test_a_complete_checkpoint_reports_nothing_missing(tiny_bert, m3e_dir):
    from cmteb.models.encoder import BGEEncoder

    for folder in (tiny_bert, m3e_dir):
        assert BGEEncoder.load(str(folder)).weights == {"missing": [], "unexpected": [], "mismatched": []}


def _one_line_exit_2(args, message, capsys):
    from cmteb.cli import main

    assert main([*args, "--no-progress"] if args[0] == "run" else args) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("cmteb: error: ") and err.count("\n") == 1, err
    return err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--device", "foo"], "unknown --device 'foo'"),
        (["--device", "mps"], "unknown --device 'mps'"),
        (["--max-length", "1"], "--max-length 1 leaves no room for text"),
        (["--subsample", "5", "--subsample-corpus", "-5"], "--subsample-corpus must be 0 or more"),
        (["--devices", ","], "--devices ',' lists no device"),
        (["--ray", "127.0.0.1:1"], "nothing answers at the Ray address 127.0.0.1:1"),
        (["--ray", "head-without-port"], "is no Ray address: pass HOST:PORT"),
    ],
    ids=["device-foo", "device-mps", "max-length-1", "subsample-corpus", "devices-comma", "ray-silent", "ray-no-port"],
)
def test_bad_run_options_are_one_line(extra, message, tiny_bert, samples_dir, tmp_path, capsys):
    _one_line_exit_2(_atec(tiny_bert, samples_dir, tmp_path / "out", *extra), message, capsys)
    assert not (tmp_path / "out").exists()


def test_files_where_folders_belong_are_one_line(tiny_bert, samples_dir, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    _one_line_exit_2(_atec(tiny_bert, samples_dir, tmp_path / "out", "--cache-dir", str(blocker)), "is a file", capsys)
    _one_line_exit_2(["leaderboard", "--results", str(samples_dir), "--out", str(blocker)], "--out", capsys)


@pytest.mark.parametrize("damage", [b"\x00\x01 not a checkpoint", b""], ids=["garbage", "empty"])
def test_damaged_weight_files_are_one_line(damage, tiny_bert, samples_dir, tmp_path, capsys):
    model = _copy(tiny_bert, tmp_path / "damaged")
    (model / "model.safetensors").write_bytes(damage)
    _one_line_exit_2(
        _atec(model, samples_dir, tmp_path / "out"), "weight files of model local/damaged cannot be read", capsys
    )


def test_a_config_of_another_size_than_the_weights_is_named(tiny_bert, samples_dir, tmp_path, capsys):
    model = _copy(tiny_bert, tmp_path / "resized")
    _edit_json(model / "config.json", lambda c: c.update(intermediate_size=2 * c["intermediate_size"]))
    message = "the config.json of model local/resized does not match its weights: encoder.layer.0.intermediate"
    _one_line_exit_2(_atec(model, samples_dir, tmp_path / "out"), message, capsys)


def test_an_invalid_local_config_is_named_as_the_file(tiny_bert, samples_dir, tmp_path, capsys):
    model = _copy(tiny_bert, tmp_path / "cut")
    config = model / "config.json"
    config.write_text(config.read_text()[:-20])
    _one_line_exit_2(_atec(model, samples_dir, tmp_path / "out"), f"{config} is not valid JSON", capsys)


def test_a_full_datasets_cache_is_not_called_a_damaged_copy(tiny_bert, samples_dir, tmp_path, capsys, monkeypatch):
    import datasets.arrow_writer

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets-cache")  # nothing cached yet
    monkeypatch.setattr(datasets.arrow_writer.ArrowWriter, "write_table", _disk_full)
    monkeypatch.setattr(datasets.arrow_writer.ArrowWriter, "write_examples_on_file", _disk_full)
    err = _one_line_exit_2(_atec(tiny_bert, samples_dir, tmp_path / "out"), "no space left to load task ATEC", capsys)
    assert "HF_DATASETS_CACHE" in err and "re-download" not in err


def test_an_unreadable_run_record_is_kept_aside(tiny_bert, samples_dir, tmp_path, capsys):
    from cmteb.cli import main
    from cmteb.results.files import RUN_RECORD

    out = tmp_path / "out"
    assert main([*_atec(tiny_bert, samples_dir, out), "--no-progress"]) == 0
    record = next(out.rglob("run.json"))
    record.write_text('{"tasks": {"ATEC": ')  # cut short
    capsys.readouterr()
    assert main(_atec(tiny_bert, samples_dir, out, "--no-progress", task="BQ")) == 0
    err = capsys.readouterr().err
    aside = list(record.parent.glob("run.json.damaged-*"))
    assert len(aside) == 1 and aside[0].read_text() == '{"tasks": {"ATEC": '
    assert "could not be read" in err and str(aside[0]) in err
    assert RUN_RECORD.endswith("run.json") and "BQ" in json.loads(record.read_text())["tasks"]


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data["scores"]["test"][0].update(cosine_spearman="0.60"),
        lambda data: data.update(scores={}),
    ],
    ids=["score-as-string", "no-scores"],
)
def test_compare_refuses_a_baseline_without_a_usable_score(damage, tmp_path, capsys):
    from results_fixtures import write_model

    scores = {"ATEC": {"cosine_spearman": 0.60}, "TNews": {"accuracy": 0.5}}
    base = write_model(tmp_path / "base", "org/m", "r1", scores)
    cand = write_model(tmp_path / "cand", "org/m", "r1", scores)
    _edit_json(base / "ATEC.json", damage)
    _one_line_exit_2(["compare", str(base), str(cand)], "baseline result file", capsys)
    _one_line_exit_2(["compare", str(cand), str(base)], "candidate result file", capsys)


def _disk_full(*args, **kwargs):
    import errno

    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_under_the_cache_is_a_warning_and_the_run_goes_on(
    tiny_bert, samples_dir, tmp_path, capsys, monkeypatch
):
    from cmteb.cli import main

    assert main(_atec(tiny_bert, samples_dir, tmp_path / "ref", "--no-progress", "--no-cache")) == 0
    reference = json.loads(next((tmp_path / "ref").rglob("ATEC.json")).read_text())["scores"]
    capsys.readouterr()
    monkeypatch.setattr("cmteb.models.cache.atomic_write_bytes", _disk_full)
    args = _atec(tiny_bert, samples_dir, tmp_path / "out", "--no-progress", "--cache-dir", str(tmp_path / "cache"))
    assert main(args) == 0
    err = capsys.readouterr().err
    assert err.count("No space left on device") == 1 and "in memory only" in err
    assert json.loads(next((tmp_path / "out").rglob("ATEC.json")).read_text())["scores"] == reference


def test_an_unwritable_cache_folder_is_a_warning_and_the_run_completes(tiny_bert, samples_dir, tmp_path, capsys):
    from cmteb.cli import main

    assert main(_atec(tiny_bert, samples_dir, tmp_path / "ref", "--no-progress", "--no-cache")) == 0
    reference = json.loads(next((tmp_path / "ref").rglob("ATEC.json")).read_text())["scores"]
    loop = tmp_path / "loop"
    loop.symlink_to(loop)  # a folder no write can go into (a read-only mount alike, also for root)
    capsys.readouterr()
    assert main(_atec(tiny_bert, samples_dir, tmp_path / "out", "--no-progress", "--cache-dir", str(loop))) == 0
    err = capsys.readouterr().err
    assert "embedding cache" in err and "in memory only" in err
    assert f"the result store {loop / 'results'} cannot be written" in err and "output folder only" in err
    assert json.loads(next((tmp_path / "out").rglob("ATEC.json")).read_text())["scores"] == reference


def test_a_full_output_disk_is_one_line_and_loses_nothing(tiny_bert, samples_dir, tmp_path, capsys, monkeypatch):
    from cmteb.cli import main

    out = tmp_path / "out"
    assert main(_atec(tiny_bert, samples_dir, out, "--no-progress")) == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and p.suffix != ".lock"}
    capsys.readouterr()
    monkeypatch.setattr("cmteb.io.os.replace", _disk_full)
    _one_line_exit_2(_atec(tiny_bert, samples_dir, out, "--overwrite", "--no-cache"), "No space left on device", capsys)
    after = {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and p.suffix != ".lock"}
    assert after == before


def _stored_entry(cache):
    """The one result-store entry under a cache folder."""
    (entry,) = list(cache.rglob("entry.json"))
    return entry.parent


def _reshape_keeping_checksums(folder):
    """A wrongly shaped result whose recorded checksum is made to match: only parsing can catch it."""
    from cmteb.io import sha256_file

    result = next(p for p in folder.glob("*.json") if p.name not in ("entry.json", "model_meta.json"))
    result.write_text(json.dumps({"mteb_dataset_name_missing": True}))
    _edit_json(folder / "entry.json", lambda e: e["checksums"].update({result.name: sha256_file(result)}))


@pytest.mark.parametrize(
    "damage",
    [
        lambda folder: (folder / "AFQMC.json").write_text('{"scores": '),
        _reshape_keeping_checksums,
        lambda folder: _edit_json(folder / "entry.json", lambda entry: entry.pop("record")),
    ],
    ids=["truncated", "wrong-shape", "no-record"],
)
def test_a_damaged_stored_result_is_evaluated_again(damage, tiny_bert, samples_dir, tmp_path, capsys):
    common = dict(tasks=["AFQMC"], data_dir=samples_dir, show_progress=False, cache_dir=tmp_path / "cache")
    first = run(str(tiny_bert), output_dir=tmp_path / "a", **common)
    damage(_stored_entry(tmp_path / "cache"))
    capsys.readouterr()
    again = run(str(tiny_bert), output_dir=tmp_path / "b", **common)
    err = capsys.readouterr().err
    assert again.outcomes[0].status == "ran" and err.count("is damaged") == 1, err
    assert again.outcomes[0].score == first.outcomes[0].score
    json.loads(again.outcomes[0].path.read_text())  # a valid file, not the damaged copy
    later = run(str(tiny_bert), output_dir=tmp_path / "c", **common)  # the store holds a good entry again
    assert later.outcomes[0].status == "reused" and later.outcomes[0].score == first.outcomes[0].score


def test_a_damaged_result_in_the_output_folder_is_evaluated_again(tiny_bert, samples_dir, tmp_path, capsys):
    common = dict(tasks=["AFQMC"], data_dir=samples_dir, show_progress=False, use_cache=False)
    first = run(str(tiny_bert), output_dir=tmp_path / "out", **common)
    first.outcomes[0].path.write_text('{"scores": ')
    capsys.readouterr()
    again = run(str(tiny_bert), output_dir=tmp_path / "out", **common)
    assert again.outcomes[0].status == "ran" and "cannot be trusted" in capsys.readouterr().err
    assert again.outcomes[0].score == first.outcomes[0].score
    assert run(str(tiny_bert), output_dir=tmp_path / "out", **common).outcomes[0].status == "skipped"


def _one_atec_run(tiny_bert, samples_dir, out):
    from cmteb.results.reader import collect_results

    run(str(tiny_bert), tasks=["ATEC"], data_dir=samples_dir, output_dir=out, show_progress=False, use_cache=False)
    (results,) = collect_results([out])
    return results


def test_readers_take_only_the_files_the_run_record_lists(tiny_bert, samples_dir, tmp_path, capsys):
    from cmteb.results.reader import collect_results

    results = _one_atec_run(tiny_bert, samples_dir, tmp_path / "out")
    score = results.task_score("ATEC")
    stray = results.folder / "ATEC.old.json"
    stray.write_text(results.tasks["ATEC"].path.read_text())
    _edit_json(stray, lambda d: d["scores"]["test"][0].update(cosine_spearman=0.11, main_score=0.11))
    capsys.readouterr()
    (again,) = collect_results([tmp_path / "out"])
    assert again.task_score("ATEC") == score and again.tasks["ATEC"].path.name == "ATEC.json"
    assert "ATEC.old.json ignored" in capsys.readouterr().err


def test_a_task_the_run_record_does_not_list_is_no_score_of_the_model(tiny_bert, samples_dir, tmp_path, capsys):
    from results_fixtures import mteb2_result

    from cmteb.cli import main

    results = _one_atec_run(tiny_bert, samples_dir, tmp_path / "out")
    (results.folder / "AFQMC.json").write_text(
        json.dumps(mteb2_result("AFQMC", {"validation": {"cosine_spearman": 0.9}}))
    )
    capsys.readouterr()
    board = tmp_path / "board"
    assert main(["leaderboard", "--results", str(tmp_path / "out"), "--out", str(board), "--no-reference"]) == 0
    assert "AFQMC.json ignored: the run record" in capsys.readouterr().err
    assert "partial: 1 of 31" in (board / "leaderboard.md").read_text()
    card = tmp_path / "card.md"
    assert (
        main(
            [
                "model-card",
                "--results",
                str(tmp_path / "out"),
                "--model",
                results.model,
                "--out",
                str(card),
                "--allow-samples",
            ]
        )
        == 0
    )
    assert "AFQMC" not in card.read_text()


@pytest.mark.parametrize("damage", ["deleted", "cut short"])
def test_results_without_an_intact_run_record_are_unverified(damage, tiny_bert, samples_dir, tmp_path, capsys):
    from cmteb.cli import main
    from cmteb.results.files import RUN_RECORD

    results = _one_atec_run(tiny_bert, samples_dir, tmp_path / "out")
    record = results.folder / RUN_RECORD
    if damage == "deleted":
        record.unlink()
    else:
        record.write_bytes(record.read_bytes()[: record.stat().st_size // 2])
    _edit_json(results.tasks["ATEC"].path, lambda d: d["scores"]["test"][0].update(cosine_spearman=0.99))
    board, card = ["leaderboard", "--results", str(tmp_path / "out"), "--out", str(tmp_path / "b")], tmp_path / "c.md"
    _one_line_exit_2(board, "without an intact run record", capsys)
    make_card = ["model-card", "--results", str(tmp_path / "out"), "--model", results.model, "--out", str(card)]
    _one_line_exit_2([*make_card, "--allow-samples"], "--allow-unverified", capsys)
    _one_line_exit_2(["compare", str(results.folder), str(results.folder)], "without an intact run record", capsys)
    assert not card.exists()
    assert main([*board, "--allow-unverified", "--no-reference"]) == 0
    table = (tmp_path / "b" / "leaderboard.md").read_text()
    assert f"| {results.model} | unverified |" in table
    assert main([*make_card, "--allow-unverified"]) == 0
    assert "unverified: their run record is missing or damaged" in card.read_text()


def test_a_model_card_out_folder_is_one_line(tiny_bert, samples_dir, tmp_path, capsys):
    results = _one_atec_run(tiny_bert, samples_dir, tmp_path / "out")
    make_card = ["model-card", "--results", str(tmp_path / "out"), "--model", results.model, "--allow-samples"]
    _one_line_exit_2([*make_card, "--out", str(tmp_path)], "is a folder: pass the card's file", capsys)


def test_a_hand_edited_result_is_refused_by_every_reader(tiny_bert, samples_dir, tmp_path, capsys):
    results = _one_atec_run(tiny_bert, samples_dir, tmp_path / "out")
    _edit_json(results.tasks["ATEC"].path, lambda d: d["scores"]["test"][0].update(cosine_spearman=0.11))
    leaderboard = ["leaderboard", "--results", str(tmp_path / "out")]
    _one_line_exit_2(leaderboard, "checksum differs from the run record", capsys)
    _one_line_exit_2(["compare", str(results.folder), str(results.folder)], "ATEC.json changed", capsys)


def test_compare_refuses_items_that_do_not_reproduce_the_score(tiny_bert, samples_dir, tmp_path, capsys):
    from cmteb.io import sha256_file
    from cmteb.results.files import RUN_RECORD

    base = _one_atec_run(tiny_bert, samples_dir, tmp_path / "base")
    cand = _one_atec_run(tiny_bert, samples_dir, tmp_path / "cand")
    path = base.tasks["ATEC"].path
    _edit_json(path, lambda d: d["scores"]["test"][0].update(cosine_spearman=0.11, main_score=0.11))
    # The run record is edited to match, as someone covering a hand edit would: the items still disagree.
    checksum = {path.name: sha256_file(path)}
    _edit_json(base.folder / RUN_RECORD, lambda r: r["tasks"]["ATEC"]["checksums"].update(checksum))
    _one_line_exit_2(["compare", str(base.folder), str(cand.folder)], "11.00 in the result file", capsys)


def test_two_results_of_one_task_without_a_run_record_are_an_error(tmp_path, capsys):
    from results_fixtures import write_model

    folder = write_model(tmp_path / "r", "org/m", "r1", {"ATEC": {"cosine_spearman": 0.60}})
    shutil.copy(folder / "ATEC.json", folder / "ATEC.old.json")
    _one_line_exit_2(["leaderboard", "--results", str(tmp_path / "r")], "two results of ATEC", capsys)


def _age(path, seconds):
    import os

    stat = path.stat()
    os.utime(path, (stat.st_atime - seconds, stat.st_mtime - seconds))


def test_orphans_of_killed_cache_writes_are_removed_unless_a_live_run_may_write_them(tmp_path):
    import subprocess
    import sys

    import numpy as np

    from cmteb.models.cache import EmbeddingCache, text_key

    namespace = {"model": "t"}
    first = EmbeddingCache(namespace, tmp_path)
    first.put([text_key("一")], np.ones((1, 4), dtype=np.float32))
    folder = first.folder
    committed = sorted(p.name for p in folder.glob("shard-*"))
    # What a killed writer leaves: a shard without its record, and temp files; written before `first` opened.
    old = [folder / "shard-dead.npy", folder / "shard-dead.keys", folder / ".shard-x.npy.abc.tmp"]
    for path in old:
        path.write_bytes(b"\x00" * 8)
        _age(path, 3600)
    for lock in (folder / "runs").glob("*.lock"):
        _age(lock, 60)  # `first` opened a minute ago: the old files predate every live run
    young = folder / "shard-being-written.npy"  # as a live run writes it, after its lock
    young.write_bytes(b"\x00" * 8)
    # A run killed before it ended leaves its lock file behind, unlocked.
    subprocess.run(
        [
            sys.executable,
            "-c",
            f"from cmteb.models.cache import EmbeddingCache; EmbeddingCache({namespace!r}, {str(tmp_path)!r})",
        ],
        check=True,
    )
    assert len(list((folder / "runs").glob("*.lock"))) == 2
    second = EmbeddingCache(namespace, tmp_path)
    assert not any(p.exists() for p in old), "orphans of killed writes are removed"
    assert young.exists(), "a file a live run may still be writing is kept"
    assert sorted(p.name for p in folder.glob("shard-*") if p != young) == committed
    assert np.array_equal(second.get(text_key("一")), np.ones(4, dtype=np.float32))  # the committed shard reads back
    assert len(list((folder / "runs").glob("*.lock"))) == 2, (
        "the ended run's lock is gone; first and second hold theirs"
    )
