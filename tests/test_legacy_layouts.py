"""The 2023 hub layouts (protocol flagembedding-2023) read into the same tasks as mteb 2's layouts.

The sample mirrors hold the same texts in both layouts, so a model must score the same on both;
reranking MAP is also checked against mteb 1's formula: scikit-learn's average precision per query
over its candidate list, averaged over queries. The two agree when no two candidates tie; on a
tie mteb 1 (scikit-learn) averages over the tied ranks while mteb 2 (pytrec_eval) breaks it by
document id. A random tiny BERT ties in float32, so that check uses m3e-small read to 8 tokens.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score

from cmteb.assets import SAMPLES_DIR
from cmteb.models.encoder import BGEEncoder
from cmteb.runner import run
from cmteb.tasks.build import build_task, load_task_data
from cmteb.tasks.protocols import resolve_protocol

TASKS = ["T2Retrieval", "CmedqaRetrieval", "T2Reranking", "CMedQAv1-reranking"]


@pytest.fixture(scope="module")
def both_protocols(m3e_dir, tmp_path_factory):
    # A real model: a random tiny BERT ties candidates in float32, and the two layouts number documents
    # differently, so pytrec_eval would break those ties differently.
    out = tmp_path_factory.mktemp("layouts")
    common = dict(tasks=TASKS, data_dir=SAMPLES_DIR, output_dir=out, show_progress=False, model_name="org/m3e-small")
    return run(str(m3e_dir), **common), run(str(m3e_dir), protocol="flagembedding-2023", **common)


def _scores(summary, name):
    outcome = next(o for o in summary.outcomes if o.spec.name == name)
    return json.loads(outcome.path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", TASKS)
def test_both_layouts_give_the_same_scores(both_protocols, name):
    current, legacy = (_scores(s, name) for s in both_protocols)
    assert legacy["cmteb"]["protocol"] == "flagembedding-2023"
    assert legacy["cmteb"]["dataset_repo"].startswith("C-MTEB/")
    [split] = current["scores"]
    [a], [b] = current["scores"][split], legacy["scores"][split]
    metrics = [k for k, v in a.items() if isinstance(v, float) and k.startswith(("ndcg", "map", "mrr", "recall"))]
    assert metrics
    for metric in metrics:
        assert b[metric] == pytest.approx(a[metric], abs=1e-6), metric


def test_legacy_retrieval_reads_the_qrels_repo(samples_dir):
    spec = resolve_protocol("flagembedding-2023").get("T2Retrieval")
    task = build_task(spec, samples_dir)
    load_task_data(task, spec, samples_dir)
    split = task.dataset["default"]["dev"]
    qrels = pd.read_parquet(samples_dir / "C-MTEB" / "T2Retrieval-qrels" / "data" / "dev-00000-of-00001.parquet")
    assert {(q, d) for q, docs in split["relevant_docs"].items() for d in docs} == set(
        zip(qrels.qid, qrels.pid, strict=True)
    )
    assert task.ignore_identical_ids  # mteb 1's default, which the 2023 tables ran with


@pytest.mark.parametrize("name", ["T2Reranking", "CMedQAv1-reranking"])
def test_reranking_map_equals_mteb1_formula(name, m3e_dir, samples_dir, tmp_path):
    spec = resolve_protocol("flagembedding-2023").get(name)
    settings = dict(pooling="cls", max_length=8)
    summary = run(
        str(m3e_dir),
        tasks=[name],
        protocol="flagembedding-2023",
        data_dir=samples_dir,
        output_dir=tmp_path,
        show_progress=False,
        no_instruction=True,
        **settings,
    )
    [split] = spec.splits
    rows = pd.read_parquet(samples_dir / spec.repo / "data" / f"{split}-00000-of-00001.parquet")
    encoder = BGEEncoder.load(str(m3e_dir), **settings)
    aps = []
    skipped = 0
    for row in rows.itertuples():
        if len(row.positive) == 0 or len(row.negative) == 0:
            skipped += 1  # mteb 1's RerankingEvaluator (1.1.1, lines 50-53) left such a query out
            continue
        docs, query = encoder.encode([*row.positive, *row.negative]), encoder.encode([row.query])[0]
        scores = docs @ query / (np.linalg.norm(docs, axis=1) * np.linalg.norm(query))  # cosine, as mteb scores
        assert len(set(scores.tolist())) == len(scores)  # no ties: both formulas apply alike
        aps.append(average_precision_score([1] * len(row.positive) + [0] * len(row.negative), scores))
    assert skipped == 2, "the sample holds a positive-only and a negative-only query"
    result = _scores(summary, name)["scores"][split][0]
    assert 0.2 < result["map_at_1000"] < 0.95  # not saturated: the ranks matter
    assert result["map_at_1000"] == pytest.approx(float(np.mean(aps)), abs=1e-5)


def test_an_mteb1_reranking_file_renames_only_its_map_and_mrr(tmp_path):
    from cmteb.results.reader import parse_result_file

    path = tmp_path / "T2Reranking.json"
    path.write_text(
        json.dumps({"mteb_dataset_name": "T2Reranking", "dev": {"map": 0.66, "mrr": 0.77, "evaluation_time": 12.5}})
    )
    parsed = parse_result_file(path)
    assert parsed.shape == "mteb1"
    assert parsed.splits == {"dev": [{"map_at_1000": 0.66, "mrr_at_10": 0.77, "evaluation_time": 12.5}]}
