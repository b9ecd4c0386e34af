"""Model-card metadata: the seed's model-index shape, written with huggingface_hub, merged safely."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from huggingface_hub import ModelCard
from results_fixtures import rewrite_result, write_model, write_protocol_model

from cmteb.cli import main
from cmteb.report.modelcard import card_metrics, find_model_results, write_model_card
from cmteb.tasks.protocols import resolve_protocol

#: The BGE cards' metric names, back to the result files' (mteb 2) names: what an independent reader undoes.
CARD_TO_MTEB = {"map": "map_at_1000", "mrr": "mrr_at_10"}


def hand_made_results(root: Path) -> Path:
    """Four tasks of different types, with hand-picked numbers; MultilingualSentiment's two splits differ."""
    return write_model(
        root,
        "my-org/my-zh-embedder",
        "abc123",
        {
            "T2Retrieval": {
                f"{m}_at_{k}": round(0.1 * i + 0.0001 * k, 6)
                for i, m in enumerate(("map", "mrr", "ndcg", "precision", "recall"), start=1)
                for k in (1, 3, 5, 10, 20, 100, 1000)
            },
            "ATEC": {
                "cosine_pearson": 0.51,
                "cosine_spearman": 0.52,
                "euclidean_pearson": 0.53,
                "euclidean_spearman": 0.54,
                "manhattan_pearson": 0.55,
                "manhattan_spearman": 0.56,
                "pearson": 0.51,
                "spearman": 0.52,
            },
            "T2Reranking": {"map_at_1000": 0.6612, "mrr_at_10": 0.7634, "ndcg_at_10": 0.7},
            "MultilingualSentiment": {"validation": {"accuracy": 0.4125}, "test": {"accuracy": 0.5375}},
        },
    )


def _file_value(folder: Path, dataset_name: str, split: str, subset: str, metric: str) -> float:
    """A card entry's number read straight from its result file (no cmteb code): the split's entry of that
    subset, the metric under its mteb 2 name, in percent."""
    task = dataset_name.removeprefix("MTEB ").split(" (")[0]
    data = json.loads((folder / f"{task}.json").read_text(encoding="utf-8"))
    [entry] = [e for e in data["scores"][split] if e.get("hf_subset", "default") == subset]
    name = CARD_TO_MTEB.get(metric, metric.replace("cos_sim_", "cosine_"))
    return 100 * entry[name]


def _assert_card_equals_files(card_path: Path, folder: Path) -> int:
    """Every entry huggingface_hub's parser reads off the card equals its result file's number; their count."""
    parsed = ModelCard.load(card_path).data.eval_results
    for r in parsed:
        expected = _file_value(folder, r.dataset_name, r.dataset_split, r.dataset_config, r.metric_type)
        assert r.metric_value == pytest.approx(expected, abs=1e-9), (r.dataset_name, r.dataset_split, r.metric_type)
    return len(parsed)


def test_card_metric_names_follow_the_seed():
    assert list(card_metrics("STS", {"cosine_spearman": 0.5, "pearson": 0.4, "manhattan_pearson": 0.3})) == [
        "cos_sim_spearman",
        "manhattan_pearson",
    ]
    assert card_metrics("Reranking", {"map_at_1000": 0.6, "mrr_at_10": 0.7}) == {"map": 0.6, "mrr": 0.7}
    assert list(card_metrics("PairClassification", {"cosine_ap": 0.1, "max_ap": 0.2, "similarity_ap": 0.3})) == [
        "cos_sim_ap",
        "max_ap",
    ]
    assert "map_at_20" not in card_metrics("Retrieval", {"map_at_20": 0.1, "map_at_10": 0.2})


def test_every_card_number_is_its_result_files_for_its_split(tmp_path):
    """Read back by huggingface_hub's own parser and checked against the result files read as JSON: a split's
    metrics never stand for another split's (MultilingualSentiment's validation and test differ)."""
    folder = hand_made_results(tmp_path / "results")
    out = write_model_card(find_model_results([tmp_path / "results"], "my-org/my-zh-embedder"), tmp_path / "README.md")
    assert _assert_card_equals_files(out, folder) == 30 + 6 + 2 + 2  # retrieval, STS, reranking, two splits
    sentiment = ModelCard.load(out).data.eval_results
    entries = {r.dataset_split: round(r.metric_value, 6) for r in sentiment if "Sentiment" in r.dataset_name}
    assert entries == {"validation": 41.25, "test": 53.75}


def test_a_multilingual_task_carries_its_own_subsets_numbers(tmp_path):
    """STS22 under flagembedding-2023 is scored on its zh subset: a file holding zh and en gives the card zh's."""
    folder = write_protocol_model(tmp_path / "out", "my-org/m", "flagembedding-2023")
    path = folder / "STS22.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    zh = {"cosine_spearman": 0.6125, "main_score": 0.6125, "hf_subset": "zh"}
    data["scores"]["test"] = [{"cosine_spearman": 0.1, "main_score": 0.1, "hf_subset": "en"}, zh]
    rewrite_result(folder, path.name, data)
    results = find_model_results([tmp_path / "out"], "my-org/m", protocol="flagembedding-2023")
    card = write_model_card(results, tmp_path / "README.md")
    _assert_card_equals_files(card, folder)
    [entry] = [r for r in ModelCard.load(card).data.eval_results if r.dataset_name == "MTEB STS22 (zh)"]
    assert entry.metric_value == pytest.approx(61.25)


def test_card_parses_back_to_the_same_results(tmp_path):
    results = find_model_results([hand_made_results(tmp_path / "results").parent.parent], "my-org/my-zh-embedder")
    out = write_model_card(results, tmp_path / "README.md")
    parsed = ModelCard.load(out).data.eval_results
    got = {(r.dataset_name, r.dataset_split, r.metric_type): r.metric_value for r in parsed}
    assert got[("MTEB ATEC", "test", "cos_sim_spearman")] == pytest.approx(52.0)
    assert got[("MTEB T2Reranking", "dev", "map")] == pytest.approx(66.12)
    assert got[("MTEB T2Retrieval", "dev", "ndcg_at_10")] == pytest.approx(100 * (0.3 + 0.001))
    assert len([k for k in got if k[0] == "MTEB T2Retrieval"]) == 30  # 5 metrics x 6 cut-offs
    front = yaml.safe_load(out.read_text(encoding="utf-8").split("---\n")[1])
    entry = next(r for r in front["model-index"][0]["results"] if r["dataset"]["name"] == "MTEB ATEC")
    assert entry["task"] == {"type": "STS"}
    assert entry["dataset"] == {
        "name": "MTEB ATEC",
        "type": "C-MTEB/ATEC",
        "config": "default",
        "split": "test",
        "revision": "0f319b1142f28d00e055a6770f3f726ae9b7d865",
    }


def test_existing_readme_keeps_body_metadata_and_other_results(tmp_path):
    hand_made_results(tmp_path / "results")
    readme = tmp_path / "README.md"
    body = "\n# My model\n\nUsage:\n\n```python\nprint('你好')  \n```\n\n---\n\nTrailing   spaces and a rule.\n"
    readme.write_text(
        "---\nlicense: mit\ntags:\n- sentence-transformers\nmodel-index:\n- name: my-zh-embedder\n  results:\n"
        "  - task:\n      type: Classification\n    dataset:\n      type: C-MTEB/TNews-classification\n"
        "      name: MTEB TNews\n      config: default\n      split: validation\n      revision: r0\n"
        "    metrics:\n    - type: accuracy\n      value: 48.5\n"
        "  - task:\n      type: STS\n    dataset:\n      type: C-MTEB/ATEC\n      name: MTEB ATEC\n"
        "      config: default\n      split: test\n      revision: old\n    metrics:\n"
        "    - type: cos_sim_spearman\n      value: 1.0\n---" + body,
        encoding="utf-8",
    )
    write_model_card(find_model_results([tmp_path / "results"], "my-org/my-zh-embedder"), readme)
    text = readme.read_text(encoding="utf-8")
    assert text.endswith("---" + body), "the body is byte-identical"
    card = ModelCard.load(readme)
    assert card.data.license == "mit" and "sentence-transformers" in card.data.tags
    results = {(r.dataset_name, r.metric_type): r.metric_value for r in card.data.eval_results}
    assert results[("MTEB TNews", "accuracy")] == 48.5, "results of tasks not run stay"
    assert results[("MTEB ATEC", "cos_sim_spearman")] == pytest.approx(52.0), "results of tasks run are replaced"


def test_model_card_cli_refuses_sample_results_and_unknown_models(tiny_bert, samples_dir, tmp_path, capsys):
    assert (
        main(
            [
                "run",
                "--model",
                str(tiny_bert),
                "--tasks",
                "ATEC",
                "--data-dir",
                str(samples_dir),
                "--output-dir",
                str(tmp_path / "res"),
                "--no-progress",
                "--model-name",
                "org/tiny",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert (
        main(
            [
                "model-card",
                "--results",
                str(tmp_path / "res"),
                "--model",
                "org/tiny",
                "--out",
                str(tmp_path / "README.md"),
            ]
        )
        == 2
    )
    assert "measured on the bundled sample data" in capsys.readouterr().err
    assert not (tmp_path / "README.md").exists()
    assert (
        main(
            [
                "model-card",
                "--results",
                str(tmp_path / "res"),
                "--model",
                "org/tiny",
                "--allow-samples",
                "--out",
                str(tmp_path / "README.md"),
            ]
        )
        == 0
    )
    assert main(["model-card", "--results", str(tmp_path / "res"), "--model", "org/other"]) == 2
    assert "no results for model 'org/other'" in capsys.readouterr().err


@pytest.mark.parametrize("protocol_name", ["mteb-cmn-v1", "cmteb-31", "flagembedding-2023"])
def test_card_names_every_task_as_its_protocol_ran_it(protocol_name, tmp_path):
    """Round trip through huggingface_hub: repo, name, config, split and revision of every entry."""
    protocol = resolve_protocol(protocol_name)
    write_protocol_model(tmp_path / "out", "my-org/m", protocol_name)
    results = find_model_results([tmp_path / "out"], "my-org/m", protocol=protocol_name)
    card = ModelCard.load(write_model_card(results, tmp_path / "README.md"))
    entries = {
        (r.dataset_name, r.dataset_type, r.dataset_config, r.dataset_split, r.dataset_revision)
        for r in card.data.eval_results
    }
    expected = set()
    for spec in protocol.all_tasks:
        for subset in spec.hf_subsets or (None,):
            name = f"MTEB {spec.run_as or spec.name}" + (f" ({subset})" if subset else "")
            expected |= {(name, spec.repo, subset or "default", split, spec.revision) for split in spec.splits}
    assert entries == expected
    names = {e[0]: e for e in entries}
    if protocol_name == "flagembedding-2023":
        assert len({e[0] for e in entries}) == 37  # 35 tasks and the two extras
        assert names["MTEB T2Retrieval"][1:3] == ("C-MTEB/T2Retrieval", "default")
        assert names["MTEB T2Retrieval"][4] == "main"
        assert names["MTEB STS22 (zh)"][1:3] == ("mteb/sts22-crosslingual-sts", "zh")
        assert names["MTEB AmazonReviewsClassification (zh)"][2] == "zh"
        assert names["MTEB MassiveIntentClassification (zh-CN)"][2] == "zh-CN"
        assert names["MTEB PAWSX"][1] == "C-MTEB/PAWSX" and names["MTEB STSB"][1] == "C-MTEB/STSB"
    if protocol_name == "cmteb-31":
        assert "MTEB CLSClusteringS2S" not in names
        assert names["MTEB CLSClusteringP2P.v2"][1::3] == (
            "mteb/CLSClusteringP2P.v2",
            "4b012f4818da8625de8e2e90526db1570e7ed2c7",
        )
        assert {e[3] for e in entries if e[0] == "MTEB ATEC"} == {"validation", "test"}
    if protocol_name == "mteb-cmn-v1":
        assert names["MTEB T2Retrieval"][1] == "mteb/T2Retrieval"
        assert {e[3] for e in entries if e[0] == "MTEB ATEC"} == {"test"}
