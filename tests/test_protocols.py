"""Protocol profiles: they differ exactly where documented, results record theirs, nothing mixes them."""

from __future__ import annotations

import json
from dataclasses import asdict

import mteb
import pytest

from cmteb.cli import main
from cmteb.results.files import read_run_record
from cmteb.results.reader import collect_results
from cmteb.runner import run
from cmteb.tasks.protocols import OVERRIDABLE, load_protocols, resolve_protocol

FIELDS = (*OVERRIDABLE, "metric")
MULTILINGUAL = {"STS22", "AmazonReviewsClassification", "MassiveIntentClassification", "MassiveScenarioClassification"}
RETRIEVAL = [
    "T2Retrieval",
    "MMarcoRetrieval",
    "DuRetrieval",
    "CovidRetrieval",
    "CmedqaRetrieval",
    "EcomRetrieval",
    "MedicalRetrieval",
    "VideoRetrieval",
]


def differences(a: str, b: str) -> dict[str, set[str]]:
    """task -> fields that differ between two protocols ({"added"}/{"removed"}: a task only `b`/`a` has)."""
    pa = {t.name: t for t in load_protocols()[a].tasks}
    pb = {t.name: t for t in load_protocols()[b].tasks}
    out = {name: {"added"} for name in pb.keys() - pa.keys()} | {name: {"removed"} for name in pa.keys() - pb.keys()}
    for name in pa.keys() & pb.keys():
        changed = {f for f in FIELDS if asdict(pa[name])[f] != asdict(pb[name])[f]}
        if changed:
            out[name] = changed
    return out


def test_cmteb31_differs_from_mteb_cmn_v1_exactly_where_listed():
    v2 = {"run_as", "variant"}
    assert differences("mteb-cmn-v1", "cmteb-31") == {
        "CLSClusteringS2S": v2,
        "CLSClusteringP2P": v2 | {"repo", "revision"},
        "ThuNewsClusteringS2S": v2,
        "ThuNewsClusteringP2P": v2,
        "ATEC": {"splits"},
        "BQ": {"splits"},
        "STSB": {"splits"},
    }


def test_flagembedding_2023_differs_from_mteb_cmn_v1_exactly_where_listed():
    diff = differences("mteb-cmn-v1", "flagembedding-2023")
    for name in RETRIEVAL:
        assert diff.pop(name) == {"repo", "revision", "qrels_repo", "qrels_revision", "loader"}, name
    assert diff.pop("Ocnli") == {"revision", "metric"} and diff.pop("Cmnli") == {"revision", "metric"}
    for name in ("T2Reranking", "MMarcoReranking", "CMedQAv1-reranking", "CMedQAv2-reranking"):
        assert diff.pop(name) == {"repo", "revision", "loader"}, name
    assert diff.pop("PAWSX") == {"repo", "revision"} and diff.pop("STSB") == {"repo", "revision"}
    assert diff.pop("MultilingualSentiment") == {"splits", "revision"}
    for name in MULTILINGUAL:
        assert diff.pop(name) == {"added"}, name
    assert all(changed == {"revision"} for changed in diff.values()), diff
    fe = resolve_protocol("flagembedding-2023")
    assert len(fe.tasks) == 35 and fe.get("STS22").hf_subsets == ("zh",)
    assert fe.get("MassiveIntentClassification").hf_subsets == ("zh-CN",)
    assert fe.get("Ocnli").metric == "cosine_ap" and fe.get("T2Reranking").metric == "map_at_1000"
    assert fe.get("MMarcoReranking").repo == "C-MTEB/Mmarco-reranking"
    assert fe.get("MultilingualSentiment").splits == ("validation",) and fe.splits_combine == "first"
    assert resolve_protocol("mteb-cmn-v1").get("Ocnli").metric == "max_accuracy"


def test_cmteb31_variants_match_mteb():
    """Drift check: the .v2 tasks cmteb-31 runs are mteb's, with these repos, revisions and splits."""
    for spec in resolve_protocol("cmteb-31").tasks:
        task = mteb.get_task(spec.run_as or spec.name)
        assert task.metadata.dataset["path"] == spec.repo, spec.name
        assert task.metadata.dataset["revision"] == spec.revision, spec.name
        assert list(spec.splits) == list(task.metadata.eval_splits), spec.name


def test_tasks_protocol_listing(capsys):
    assert main(["tasks", "--protocol", "cmteb-31", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert len(rows) == 33 and rows["CLSClusteringP2P"]["run_as"] == "CLSClusteringP2P.v2"
    assert [n for n, r in rows.items() if not r["averaged"]] == ["T2RerankingZh2En", "T2RerankingEn2Zh"]
    assert main(["tasks", "--protocol", "flagembedding-2023", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert len(rows) == 37 and sum(r["averaged"] for r in rows.values()) == 35
    assert rows["T2Retrieval"]["qrels_repo"] == "C-MTEB/T2Retrieval-qrels"
    assert main(["tasks", "--protocol", "nope"]) == 2
    assert "unknown protocol 'nope'" in capsys.readouterr().err


def test_runs_record_their_protocol_and_compare_refuses_to_mix(tiny_bert, samples_dir, tmp_path, capsys):
    common = dict(
        tasks=["ATEC", "CLSClusteringP2P"],
        data_dir=samples_dir,
        output_dir=tmp_path,
        show_progress=False,
        model_name="org/tiny",
    )
    default = run(str(tiny_bert), **common)
    other = run(str(tiny_bert), protocol="cmteb-31", **common)
    assert other.output_dir == tmp_path / "cmteb-31" / "results" / "org__tiny" / default.revision
    assert (other.output_dir / "CLSClusteringP2P.v2.json").is_file()
    record = read_run_record(other.output_dir)
    assert {e["protocol"] for e in record["tasks"].values()} == {"cmteb-31"}
    assert list(read_run_record(default.output_dir)["tasks"]["ATEC"]["protocol"]) == list("mteb-cmn-v1")
    found = {r.protocol: r for r in collect_results([tmp_path])}
    assert set(found) == {"mteb-cmn-v1", "cmteb-31"}
    assert set(found["cmteb-31"].tasks) == {"ATEC", "CLSClusteringP2P"}
    assert main(["compare", str(default.output_dir), str(other.output_dir)]) == 2
    assert "protocol mteb-cmn-v1 and candidate under cmteb-31" in capsys.readouterr().err
    result_file = json.loads((other.output_dir / "ATEC.json").read_text(encoding="utf-8"))
    assert result_file["cmteb"]["protocol"] == "cmteb-31" and result_file["cmteb"]["splits"] == ["validation", "test"]


def test_model_card_takes_one_protocol(tiny_bert, samples_dir, tmp_path, capsys):
    common = dict(tasks=["ATEC"], data_dir=samples_dir, output_dir=tmp_path, show_progress=False, model_name="org/t")
    run(str(tiny_bert), **common)
    run(str(tiny_bert), protocol="cmteb-31", **common)
    card = ["model-card", "--results", str(tmp_path), "--model", "org/t", "--allow-samples"]
    assert main([*card, "--out", str(tmp_path / "a.md")]) == 2
    assert "several protocols (cmteb-31, mteb-cmn-v1)" in capsys.readouterr().err
    assert not (tmp_path / "a.md").exists()
    assert main([*card, "--protocol", "cmteb-31", "--out", str(tmp_path / "b.md")]) == 0
    assert "MTEB ATEC" in (tmp_path / "b.md").read_text(encoding="utf-8")


def test_missing_instruction_of_a_known_model_is_warned(tiny_bert, samples_dir, tmp_path, capsys):
    summary = run(
        str(tiny_bert),
        tasks=["T2Retrieval"],
        data_dir=samples_dir,
        output_dir=tmp_path,
        show_progress=False,
        model_name="BAAI/bge-small-zh-v1.5",
        no_instruction=True,
    )
    err = capsys.readouterr().err
    assert "BAAI/bge-small-zh-v1.5 runs with other instructions than bge-zh's own" in err
    used = read_run_record(summary.output_dir)["tasks"]["T2Retrieval"]["instructions_used"]
    assert used == {"query": None, "document": None, "text": None, "source": "--no-instruction"}
    again = run(
        str(tiny_bert),
        tasks=["T2Retrieval"],
        data_dir=samples_dir,
        output_dir=tmp_path / "with",
        show_progress=False,
        model_name="BAAI/bge-small-zh-v1.5",
    )
    assert "runs with other instructions" not in capsys.readouterr().err
    used = read_run_record(again.output_dir)["tasks"]["T2Retrieval"]["instructions_used"]
    assert used["query"] == "为这个句子生成表示以用于检索相关文章：" and used["document"] is None
    assert used["source"].startswith("FlagOpen/FlagEmbedding: C_MTEB/eval_C-MTEB.py")


def test_split_rules_mean_and_first_follow_their_sources():
    """mteb averages a task's eval splits; FlagEmbedding's summariser takes the first of test, dev, validation."""
    splits = {"validation": [{"cosine_spearman": 0.40}], "test": [{"cosine_spearman": 0.60}]}
    cmteb31, mteb = resolve_protocol("cmteb-31"), resolve_protocol("mteb-cmn-v1")
    assert cmteb31.get("ATEC").splits == ("validation", "test") and cmteb31.splits_combine == "first"
    assert cmteb31.task_score(cmteb31.get("ATEC"), splits) == pytest.approx(0.60)  # test, not the mean 0.50
    assert mteb.task_score(mteb.get("ATEC"), splits) == pytest.approx(0.60)  # MTEB(cmn, v1) scores test only
    sentiment = {"validation": [{"accuracy": 0.70}], "test": [{"accuracy": 0.80}]}
    assert mteb.task_score(mteb.get("MultilingualSentiment"), sentiment) == pytest.approx(0.75)
    assert cmteb31.task_score(cmteb31.get("MultilingualSentiment"), sentiment) == pytest.approx(0.80)
    fe = resolve_protocol("flagembedding-2023")
    assert fe.task_score(fe.get("MultilingualSentiment"), sentiment) == pytest.approx(0.70)  # validation only
    assert fe.task_score(fe.get("T2Retrieval"), {"dev": [{"ndcg_at_10": 0.3}], "test": [{"ndcg_at_10": 0.9}]}) == 0.3
