"""`cmteb export` against the public results repository's rules, and mteb's own loader on what it writes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import mteb
import pytest
from mteb.cache import ResultCache
from mteb.results import TaskResult
from mteb.results.task_result import _expand_run_settings_entry

from cmteb.assets import SAMPLES_DIR
from cmteb.cli import main

COMMIT = "0123456789abcdef0123456789abcdef01234567"
TASKS = ["ATEC", "T2Reranking", "CLSClusteringS2S", "T2RerankingZh2En"]


def _run(model: Path, data: Path, out: Path, *extra: str) -> Path:
    args = ["run", "--model", str(model), "--tasks", *TASKS, "--data-dir", str(data), "--output-dir", str(out)]
    assert main([*args, "--no-progress", "--no-cache", *extra]) == 0
    return next(out.rglob("run.json")).parent.parent


@pytest.fixture(scope="module")
def mirror_run(tiny_bert, tmp_path_factory):
    """A run of a local model on a local mirror (a copy of the samples standing in for a full mirror)."""
    root = tmp_path_factory.mktemp("export")
    mirror = root / "mirror"
    shutil.copytree(SAMPLES_DIR, mirror)
    return _run(tiny_bert, mirror, root / "out")


def _one_line(args: list[str], message: str, capsys) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("cmteb: error: ") and err.count("\n") == 1, err


def assert_results_repo_rules(root: Path) -> None:
    """The checks embeddings-benchmark/results runs on a submission (tests/test_correct_folder_structure.py,
    test_duplicate_results.py, run_settings_check.py, test_task_name_matches_filename.py), applied here."""
    results = root / "results"
    for meta_file in results.glob("*/*/model_meta.json"):
        meta = json.loads(meta_file.read_text())
        folder = results / meta["name"].replace(" ", "_").replace("/", "__") / meta["revision"]
        assert folder == meta_file.parent, "folder = model_meta name/revision"
        covered = set()
        for line in (folder / "run_settings.jsonl").read_text().splitlines():
            entry = json.loads(line)
            assert tuple(int(p) for p in entry["version"]["mteb"].split(".")[:2]) >= (2, 0)
            covered |= {key for key, _, _ in _expand_run_settings_entry(entry)}
        task_files = [p for p in folder.iterdir() if p.name not in ("model_meta.json", "run_settings.jsonl")]
        assert task_files and all(p.suffix == ".json" for p in task_files), "nothing but mteb's files"
        for path in task_files:
            data = json.loads(path.read_text())
            assert data["task_name"] == path.stem and mteb.get_task(path.stem), "an mteb task, named as its file"
            assert set(data) <= set(TaskResult.model_fields), "no keys mteb's TaskResult does not have"
            result = TaskResult.from_disk(path)
            assert result.mteb_version and int(result.mteb_version.split(".")[0]) >= 2
            submitted = {(result.task_name, s, b["hf_subset"]) for s, blocks in result.scores.items() for b in blocks}
            assert submitted <= covered, "every split and subset in run_settings.jsonl"
    for model_folder in results.iterdir():
        tasks = [p.stem for rev in model_folder.iterdir() for p in rev.glob("*.json") if p.name != "model_meta.json"]
        assert len(tasks) == len(set(tasks)), "no task under two revisions"


def test_an_export_of_a_mirror_run_passes_the_repos_rules_and_loads_in_mteb(mirror_run, tmp_path, capsys):
    out = tmp_path / "repo"
    _one_line(["export", str(mirror_run), "--out", str(out)], "run from a local folder: pass --model", capsys)
    _one_line(["export", str(mirror_run), "--out", str(out), "--model", "org/tiny", "--revision", "main"],
              "is not a 40-hex hub commit", capsys)  # fmt: skip
    assert main(["export", str(mirror_run), "--out", str(out), "--model", "org/tiny", "--revision", COMMIT]) == 0
    printed = capsys.readouterr().out
    assert "exported 3 tasks of org/tiny" in printed and "left out T2RerankingZh2En: not an mteb task" in printed
    assert_results_repo_rules(out)
    folder = out / "results" / "org__tiny" / COMMIT
    meta = json.loads((folder / "model_meta.json").read_text())
    assert (meta["name"], meta["revision"], meta["embed_dim"]) == ("org/tiny", COMMIT, 32)
    loaded = ResultCache(cache_path=out).load_results(models=["org/tiny"], include_remote=False)
    [model] = loaded.model_results
    assert model.model_revision == COMMIT
    exported = {r.task_name: r.get_score() for r in model.task_results}
    ran = {p.stem: TaskResult.from_disk(p).get_score() for p in mirror_run.glob("*.json") if p.stem in exported}
    assert exported == ran and set(exported) == {"ATEC", "T2Reranking", "CLSClusteringS2S"}
    _one_line(["export", str(mirror_run), "--out", str(out), "--model", "org/tiny", "--revision", COMMIT],
              "exists: remove it", capsys)  # fmt: skip


def test_samples_variants_and_unverified_runs_are_refused(tiny_bert, samples_dir, mirror_run, tmp_path, capsys):
    flags = ["--out", str(tmp_path / "repo"), "--model", "org/tiny", "--revision", COMMIT]
    on_samples = _run(tiny_bert, samples_dir, tmp_path / "samples")
    _one_line(["export", str(on_samples), *flags], "measured on the bundled sample data, not C-MTEB", capsys)
    variant = _run(tiny_bert, mirror_run.parents[3] / "mirror", tmp_path / "variant", "--max-length", "64")
    _one_line(["export", str(variant), *flags], "non-default settings (max length 64)", capsys)
    (variant / "cmteb" / "run.json").unlink()
    _one_line(["export", str(variant), *flags], "no intact run record", capsys)
    assert not (tmp_path / "repo").exists(), "nothing written"


def test_a_variant_folder_stays_apart_from_the_default_run_in_mteb(tiny_bert, samples_dir, tmp_path):
    out = tmp_path / "out"
    default = _run(tiny_bert, samples_dir, out)
    _run(tiny_bert, samples_dir, out, "--pooling", "mean")
    variant = default.with_name(f"{default.name}__pooling-mean")
    meta = json.loads((variant / "model_meta.json").read_text())
    assert meta["revision"] == default.name and meta["experiment_kwargs"] == {"pooling": "mean"}
    cache = ResultCache(cache_path=out)
    [plain] = cache.load_results(include_remote=False).model_results  # mteb's default: no experiments
    assert plain.experiment_name is None and len(plain.task_results) == len(TASKS), "each task once"
    both = cache.load_results(include_remote=False, load_experiments="match_name").model_results
    assert sorted(str(m.experiment_name) for m in both) == ["None", "pooling_mean"]


def test_a_model_from_the_hub_is_filed_under_its_commit(monkeypatch):
    from cmteb.models import sources

    monkeypatch.setattr("cmteb.hub.hub_offline", lambda: False)
    asked = []

    def repo_info(self, repo, revision=None, **kwargs):
        asked.append((repo, revision))
        return SimpleNamespace(sha=COMMIT)

    monkeypatch.setattr("huggingface_hub.HfApi.repo_info", repo_info)
    source = sources.resolve_model("BAAI/bge-small-zh-v1.5", revision="main")
    assert (source.revision, asked) == (COMMIT, [("BAAI/bge-small-zh-v1.5", "main")])


def test_model_meta_comes_from_mtebs_registry_when_it_knows_the_model(tiny_bert, samples_dir, tmp_path):
    out = tmp_path / "out"
    args = ["run", "--model", str(tiny_bert), "--tasks", "ATEC", "--data-dir", str(samples_dir)]
    assert main([*args, "--output-dir", str(out), "--model-name", "moka-ai/m3e-small", "--no-progress"]) == 0
    meta = json.loads(next(out.rglob("model_meta.json")).read_text())
    known = mteb.get_model_meta("moka-ai/m3e-small")
    assert (meta["release_date"], meta["license"], meta["reference"]) == (
        str(known.release_date),
        known.license,
        known.reference,
    )
    assert meta["languages"] == known.languages and meta["training_datasets"]
    assert meta["revision"] == next(out.rglob("model_meta.json")).parent.name, "the folder's revision"
