"""The result store's entries by themselves: keys, a stored entry read back, damage found and removed, a cache
that cannot be written. (tests/test_result_store.py checks the store through whole runs.)"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from results_fixtures import mteb2_result

from cmteb.results.files import CHECKSUMS, file_checksums
from cmteb.runner import store as store_module
from cmteb.runner.store import ENTRY, ResultStore

SYSTEM = {"name": "org/model", "revision": "r1", "settings": {"batch_size": 8}}
EVALUATION = {"task": "ATEC", "data": "sha-1", "protocol": "cmteb-31"}


def _result_files(folder: Path, score: float = 0.5) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    result = folder / "ATEC.json"
    result.write_text(json.dumps(mteb2_result("ATEC", {"test": {"cosine_spearman": score}})), "utf-8")
    meta = folder / "model_meta.json"
    meta.write_text(json.dumps({"name": SYSTEM["name"], "revision": "r1"}), "utf-8")
    return [result, meta]


def _stored(tmp_path: Path, score: float = 0.5) -> tuple[ResultStore, str]:
    store = ResultStore(tmp_path / "cache", SYSTEM)
    key = store.key(EVALUATION)
    store.put(key, _result_files(tmp_path / "out", score), {"record": {"status": "ran"}, "score": score})
    return store, key


def test_a_key_is_one_hash_of_the_system_the_evaluation_and_the_scoring_packages(tmp_path, monkeypatch):
    store = ResultStore(tmp_path, SYSTEM)
    key = store.key(EVALUATION)
    assert len(key) == 32 and int(key, 16) >= 0 and store.failed is False
    # Settings may hold paths: they key as their text.
    assert store.key({**EVALUATION, "data": Path("/d")}) == store.key({**EVALUATION, "data": "/d"})
    assert ResultStore(tmp_path / "elsewhere", dict(SYSTEM)).key(dict(reversed(EVALUATION.items()))) == key
    assert store.key({**EVALUATION, "data": "sha-2"}) != key
    assert ResultStore(tmp_path, {**SYSTEM, "revision": "r2"}).key(EVALUATION) != key
    versions = store.system["versions"]
    assert set(versions) == set(store_module.SCORING_PACKAGES) and versions["mteb"]
    monkeypatch.setattr(store_module, "package_versions", lambda names: {**versions, "mteb": "0.0.1"})
    assert ResultStore(tmp_path, SYSTEM).key(EVALUATION) != key


def test_a_stored_entry_reads_back_with_its_files_and_checksums(tmp_path):
    _store, key = _stored(tmp_path)
    assert sorted(p.name for p in (tmp_path / "cache" / "results").iterdir()) == [key]  # no staging left
    fresh = ResultStore(tmp_path / "cache", SYSTEM)  # another run: read from disk, not from memory
    stored = fresh.get(key)
    assert stored is not None and stored.folder == tmp_path / "cache" / "results" / key
    assert stored.entry["record"] == {"status": "ran"} and stored.entry["score"] == 0.5
    assert stored.entry["files"] == ["ATEC.json", "model_meta.json"]
    assert stored.entry[CHECKSUMS] == file_checksums(_result_files(tmp_path / "again"))
    assert stored.file("ATEC.json").read_bytes() == (tmp_path / "out" / "ATEC.json").read_bytes()
    assert sorted(p.name for p in stored.folder.iterdir()) == sorted([ENTRY, "ATEC.json", "model_meta.json"])
    assert fresh.get(key) is stored  # checked once a run
    assert fresh.get("0" * 32) is None


def test_an_entry_in_place_is_kept(tmp_path):
    store, key = _stored(tmp_path, score=0.5)
    store.put(key, _result_files(tmp_path / "other", score=0.9), {"record": {"status": "ran"}, "score": 0.9})
    assert ResultStore(tmp_path / "cache", SYSTEM).get(key).entry["score"] == 0.5


def test_the_stored_folder_is_readable_as_the_umask_allows(tmp_path):
    old = os.umask(0o022)
    try:
        _store, key = _stored(tmp_path)
    finally:
        os.umask(old)
    assert (tmp_path / "cache" / "results" / key).stat().st_mode & 0o777 == 0o755


def _damage_file(folder: Path) -> None:
    """Another valid result in place of the stored one: only its checksum tells."""
    (folder / "ATEC.json").write_text(json.dumps(mteb2_result("ATEC", {"test": {"cosine_spearman": 0.9}})), "utf-8")


def _drop_checksums(folder: Path) -> None:
    entry = json.loads((folder / ENTRY).read_text("utf-8"))
    (folder / ENTRY).write_text(json.dumps({k: v for k, v in entry.items() if k != CHECKSUMS}), "utf-8")


def _drop_record(folder: Path) -> None:
    entry = json.loads((folder / ENTRY).read_text("utf-8"))
    (folder / ENTRY).write_text(json.dumps({k: v for k, v in entry.items() if k != "record"}), "utf-8")


def _unparsable_result(folder: Path) -> None:
    (folder / "ATEC.json").write_text('{"task_name": "ATEC"}', "utf-8")
    entry = json.loads((folder / ENTRY).read_text("utf-8"))
    entry[CHECKSUMS] = file_checksums([folder / "ATEC.json", folder / "model_meta.json"])
    (folder / ENTRY).write_text(json.dumps(entry), "utf-8")


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        (_damage_file, "(ATEC.json changed after it was written)"),
        (lambda folder: (folder / ENTRY).write_text("{", "utf-8"), f"({ENTRY} cannot be read (Expecting"),
        (lambda folder: (folder / ENTRY).unlink(), f"({ENTRY} cannot be read ([Errno 2]"),
        (lambda folder: (folder / ENTRY).write_text("[]", "utf-8"), "(no checksums recorded)"),
        (_drop_checksums, "(no checksums recorded)"),
        (_drop_record, "(no run record entry)"),
        (_unparsable_result, "ATEC.json holds no scores in a known shape"),
    ],
    ids=["changed-file", "broken-entry", "no-entry", "entry-not-a-dict", "no-checksums", "no-record", "not-a-result"],
)
def test_a_damaged_entry_is_removed_with_a_note(damage, said, tmp_path, capsys):
    _store, key = _stored(tmp_path)
    folder = tmp_path / "cache" / "results" / key
    damage(folder)
    store = ResultStore(tmp_path / "cache", SYSTEM)
    assert store.get(key) is None
    note = capsys.readouterr().err
    assert note.startswith(f"cmteb: warning: stored result {folder} is damaged (") and said in note
    assert note.endswith("): removed, the task is evaluated again\n")
    assert list((tmp_path / "cache" / "results").iterdir()) == []  # removed, nothing set aside is left
    store.put(key, _result_files(tmp_path / "new", 0.7), {"record": {"status": "ran"}, "score": 0.7})
    assert ResultStore(tmp_path / "cache", SYSTEM).get(key).entry["score"] == 0.7  # and stored again


def test_an_intact_entry_is_not_judged_damaged(tmp_path, capsys):
    _store, key = _stored(tmp_path)
    assert ResultStore(tmp_path / "cache", SYSTEM).get(key) is not None
    assert capsys.readouterr().err == ""


def test_a_cache_that_cannot_be_written_is_said_once_and_the_run_goes_on(tmp_path, capsys):
    (tmp_path / "cache").write_text("a file where the cache folder should be", "utf-8")
    store = ResultStore(tmp_path / "cache", SYSTEM)
    key = store.key(EVALUATION)
    files = _result_files(tmp_path / "out")
    store.put(key, files, {"record": {}})
    note = capsys.readouterr().err
    assert store.failed is True and note == (
        f"cmteb: warning: the result store {tmp_path / 'cache' / 'results'} cannot be written (Not a directory): this "
        "run's results are written to the output folder only (--cache-dir elsewhere, or --no-cache, to silence "
        "this)\n"
    )
    store.put(key, files, {"record": {}})
    assert capsys.readouterr().err == ""  # said once
    assert store.get(key) is None


def test_a_store_that_fails_while_writing_leaves_nothing_behind(tmp_path, monkeypatch):
    store = ResultStore(tmp_path / "cache", SYSTEM)
    key = store.key(EVALUATION)

    def refuse(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(store_module.os, "replace", refuse)
    store.put(key, _result_files(tmp_path / "out"), {"record": {}})
    assert store.failed is False  # another key may still fit
    assert list((tmp_path / "cache" / "results").iterdir()) == []


def test_an_entry_is_staged_beside_its_place_and_reads_as_text(tmp_path, monkeypatch):
    """Staged in a hidden folder of the store's own (a rename across file systems would fail), and written as
    indented UTF-8 a person can read: Chinese as itself, paths as text."""
    store = ResultStore(tmp_path / "cache", SYSTEM)
    key = store.key(EVALUATION)
    renamed = []
    real_replace = os.replace
    monkeypatch.setattr(store_module.os, "replace", lambda a, b: (renamed.append(Path(a)), real_replace(a, b)))
    entry = {"record": {"instruction": "为这个句子生成表示以用于检索相关文章：", "data_dir": Path("/data")}}
    store.put(key, _result_files(tmp_path / "out"), entry)
    [staging] = renamed
    assert staging.parent == store.folder and staging.name.startswith(f".{key}.")
    text = (store.folder / key / ENTRY).read_text(encoding="utf-8")
    assert '\n  "record": {\n    "instruction": "为这个句子生成表示以用于检索相关文章："' in text
    assert '"data_dir": "/data"' in text


def test_a_cleanup_that_fails_never_stops_a_run(tmp_path, monkeypatch):
    """Removing a damaged entry, or a staging folder after a failed store, may fail (a busy network share): the
    run goes on either way."""
    real_rmtree = shutil.rmtree

    def busy(path, ignore_errors=False):
        if not ignore_errors:
            raise OSError("device busy")
        real_rmtree(path, ignore_errors=True)

    monkeypatch.setattr(store_module.shutil, "rmtree", busy)
    _store, key = _stored(tmp_path)
    _damage_file(tmp_path / "cache" / "results" / key)
    assert ResultStore(tmp_path / "cache", SYSTEM).get(key) is None
    monkeypatch.setattr(store_module.os, "replace", lambda a, b: (_ for _ in ()).throw(OSError("disk full")))
    store = ResultStore(tmp_path / "cache", SYSTEM)
    store.put(key, _result_files(tmp_path / "out"), {"record": {}})
    assert list(store.folder.iterdir()) == []
