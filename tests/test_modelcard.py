"""Model-card metadata: the seed's model-index shape, written with huggingface_hub, merged safely."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from huggingface_hub import ModelCard
from results_fixtures import write_model

from cmteb.cli import main
from cmteb.modelcard import card_metrics, find_model_results, write_model_card

GOLDEN = Path(__file__).parent / "data" / "model_card_golden.md"


def hand_made_results(root: Path) -> Path:
    """Three tasks of different types, with hand-picked numbers."""
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
        },
    )


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


def test_golden_model_card(tmp_path):
    hand_made_results(tmp_path / "results")
    out = write_model_card(find_model_results([tmp_path / "results"], "my-org/my-zh-embedder"), tmp_path / "README.md")
    assert out.read_text(encoding="utf-8") == GOLDEN.read_text(encoding="utf-8")


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
