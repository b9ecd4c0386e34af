"""The cross-encoder core, its mteb adapter, reranker runs and two-stage retrieval."""

from __future__ import annotations

import json
import math
import warnings

import mteb
import numpy as np
import pytest
import torch
from model_builders import build_tiny_bert
from mteb_reference import reference_task, reranking_map

from cmteb.errors import CmtebError
from cmteb.models.adapter import BGERerankerModel
from cmteb.models.reranker import BGEReranker
from cmteb.results.files import read_run_record
from cmteb.runner import run
from cmteb.tasks.build import build_task
from cmteb.tasks.registry import load_registry
from tools.hub_layout import write_hub_repo

PAIRS = [
    ["什么是大熊猫？", "你好"],
    ["什么是大熊猫？", "大熊猫是一种生活在中国的熊科动物，以竹子为主要食物。"],
    ["手机电池不耐用怎么办", "降低屏幕亮度，关闭后台刷新"],
    ["一", "二"],
]
RERANKING_TASKS = [s.name for s in load_registry().tasks if s.type == "Reranking"]
CROSS_LINGUAL = ("T2RerankingZh2En", "T2RerankingEn2Zh")


def test_scores_equal_direct_transformers_computation(tiny_cross_encoder):
    """The seed README's recipe: tokenizer(pairs, padding, truncation, max_length=512), logits.view(-1)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_cross_encoder))
    model = AutoModelForSequenceClassification.from_pretrained(str(tiny_cross_encoder)).eval()
    with torch.no_grad():
        inputs = tokenizer(PAIRS, padding=True, truncation=True, return_tensors="pt", max_length=512)
        expected = model(**inputs, return_dict=True).logits.view(-1).float().numpy()
    reranker = BGEReranker.load(str(tiny_cross_encoder), batch_size=3)
    np.testing.assert_allclose(reranker.score([tuple(p) for p in PAIRS]), expected, atol=1e-5)
    normalised = BGEReranker.load(str(tiny_cross_encoder), normalize=True).score([tuple(p) for p in PAIRS])
    np.testing.assert_allclose(normalised, 1 / (1 + np.exp(-expected)), atol=1e-5)


def test_an_embedding_model_is_not_a_reranker(tiny_bert, tmp_path):
    with pytest.raises(CmtebError, match=r"no reranker family covers local/tiny-bert0 .*cross-encoder"):
        BGEReranker.load(str(tiny_bert))
    # Named as a reranker family, a classifier of two labels is still refused, before its weights are read.
    two_labels = build_tiny_bert(tmp_path / "bge-reranker-base", num_labels=2)
    with pytest.raises(CmtebError, match="has 2 output labels, a cross-encoder reranker has one"):
        BGEReranker.load(str(two_labels))


def test_model_meta_marks_a_cross_encoder(tiny_cross_encoder):
    meta = BGERerankerModel(BGEReranker.load(str(tiny_cross_encoder))).mteb_model_meta
    assert meta.is_cross_encoder and meta.embed_dim is None and meta.n_parameters > 0


def test_reranked_order_follows_the_scores(tiny_cross_encoder, samples_dir, tmp_path):
    reranker = BGEReranker.load(str(tiny_cross_encoder))
    spec = load_registry().get("T2Reranking")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mteb.evaluate(
            BGERerankerModel(reranker),
            build_task(spec, samples_dir),
            cache=None,
            overwrite_strategy="always",
            show_progress_bar=False,
            prediction_folder=tmp_path,
            encode_kwargs={"batch_size": 8, "show_progress_bar": False},
        )
    predictions = json.loads((tmp_path / "T2Reranking_predictions.json").read_text())["default"]["dev"]
    task = build_task(spec, samples_dir)
    task.load_data()
    split = task.dataset["default"]["dev"]
    texts = {row["id"]: row["text"] for row in split["corpus"]}
    queries = dict(zip(split["queries"]["id"], split["queries"]["text"], strict=True))
    for qid, candidates in split["top_ranked"].items():
        scores = reranker.score([(queries[qid], texts[d]) for d in candidates])
        by_score = [d for _, d in sorted(zip(scores, candidates, strict=True), key=lambda x: -x[0])]
        predicted = sorted(predictions[qid], key=lambda d: -predictions[qid][d])
        assert predicted == by_score


def test_hand_built_ranking_gives_hand_computed_map_and_mrr(tiny_cross_encoder, tmp_path, monkeypatch):
    """q1: candidates scored b > a > c with a and c relevant: AP = (1/2 + 2/3) / 2, RR = 1/2.
    q2: d > e with d relevant: AP = 1, RR = 1. MAP = 0.791667, MRR = 0.75."""
    corpus = {"a": "文档甲", "b": "文档乙", "c": "文档丙", "d": "文档丁", "e": "文档戊"}
    fixed = {"文档乙": 3.0, "文档甲": 2.0, "文档丙": 1.0, "文档丁": 5.0, "文档戊": 4.0}
    write_hub_repo(
        tmp_path / "mteb" / "T2Reranking",
        {
            "corpus": {"dev": [{"id": k, "title": "", "text": v} for k, v in corpus.items()]},
            "queries": {"dev": [{"id": "q1", "text": "问题一"}, {"id": "q2", "text": "问题二"}]},
            "default": {
                "dev": [
                    {"query-id": "q1", "corpus-id": "a", "score": 1},
                    {"query-id": "q1", "corpus-id": "c", "score": 1},
                    {"query-id": "q2", "corpus-id": "d", "score": 1},
                ]
            },
            "top_ranked": {
                "dev": [{"query-id": "q1", "corpus-ids": ["a", "b", "c"]}, {"query-id": "q2", "corpus-ids": ["d", "e"]}]
            },
        },
    )
    monkeypatch.setattr(
        BGEReranker, "score", lambda self, pairs, **kw: np.array([fixed[p] for _, p in pairs], dtype=np.float32)
    )
    summary = run(
        reranker=str(tiny_cross_encoder),
        tasks=["T2Reranking"],
        data_dir=tmp_path,
        output_dir=tmp_path / "out",
        show_progress=False,
    )
    scores = summary.outcomes[0].result.scores["dev"][0]
    # mteb's retrieval evaluator reports 5 decimals.
    assert scores["map_at_1000"] == pytest.approx(((1 / 2 + 2 / 3) / 2 + 1) / 2, abs=1e-5)
    assert scores["mrr_at_10"] == pytest.approx((1 / 2 + 1) / 2, abs=1e-5)


def _plain_mteb_cross_encoder(model_dir, task_names, samples_dir):
    from mteb.models.sentence_transformer_wrapper import CrossEncoderWrapper
    from sentence_transformers import CrossEncoder

    # Identity activation: raw logits, as cmteb scores them (the default sigmoid squeezes a random
    # model's near-equal logits into float32 ties, which pytrec_eval then breaks by document id).
    model = CrossEncoder(str(model_dir), max_length=512, device="cpu", activation_fn=torch.nn.Identity())
    wrapper = CrossEncoderWrapper(model)
    out = {}
    for name in task_names:
        if name in CROSS_LINGUAL:  # not mteb's tasks: their own layout scored by pytrec_eval (`mteb_reference`)
            out[name] = reranking_map(name, lambda pairs: model.predict(pairs, batch_size=32))
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out[name] = mteb.evaluate(
                wrapper,
                reference_task(name),
                cache=None,
                overwrite_strategy="always",
                show_progress_bar=False,
                encode_kwargs={"batch_size": 32, "show_progress_bar": False},
            ).task_results[0]
    return out


def test_reranker_run_equals_plain_mteb_cross_encoder(tiny_cross_encoder, samples_dir, tmp_path):
    """cmteb's reranker path vs mteb's own CrossEncoderWrapper, same weights, the 6 reranking samples.

    Every metric must agree."""
    summary = run(reranker=str(tiny_cross_encoder), data_dir=samples_dir, output_dir=tmp_path, show_progress=False)
    assert sorted(o.spec.name for o in summary.outcomes) == sorted(RERANKING_TASKS)
    assert summary.output_dir.parent.name == "local__tiny-cross-encoder0"
    theirs = _plain_mteb_cross_encoder(tiny_cross_encoder, RERANKING_TASKS, samples_dir)
    print(f"\n{'task':22} {'cmteb MAP':>10} {'reference':>10}")
    for o in summary.outcomes:
        ours_scores = o.result.scores[o.spec.splits[0]][0]
        if o.spec.name in CROSS_LINGUAL:
            print(f"{o.spec.name:22} {ours_scores['map_at_1000']:10.6f} {theirs[o.spec.name]:10.6f}")
            assert ours_scores["map_at_1000"] == pytest.approx(theirs[o.spec.name], abs=1e-5)  # mteb keeps 5 decimals
            continue
        their_scores = theirs[o.spec.name].scores[o.spec.splits[0]][0]
        print(f"{o.spec.name:22} {ours_scores['map_at_1000']:10.6f} {their_scores['map_at_1000']:10.6f}")
        assert o.result.get_score() == pytest.approx(theirs[o.spec.name].get_score(), abs=1e-6)
        for key, value in their_scores.items():
            if isinstance(value, float) and not math.isnan(value):
                assert ours_scores[key] == pytest.approx(value, abs=1e-6), (o.spec.name, key)


def test_two_stage_is_its_own_system_and_reranks_the_top_k(tiny_bert, tiny_cross_encoder, samples_dir, tmp_path):
    out = tmp_path / "out"
    first = run(str(tiny_bert), tasks=["T2Retrieval"], data_dir=samples_dir, output_dir=out, show_progress=False)
    before = {p: p.read_bytes() for p in first.output_dir.rglob("*") if p.is_file()}
    both = run(
        str(tiny_bert),
        reranker=str(tiny_cross_encoder),
        tasks=["T2Retrieval"],
        data_dir=samples_dir,
        output_dir=out,
        rerank_top_k=1,
        show_progress=False,
    )
    assert both.output_dir.parent.name == "local__tiny-bert0+local__tiny-cross-encoder0"
    assert {p: p.read_bytes() for p in first.output_dir.rglob("*") if p.is_file()} == before, (
        "M's own results are untouched"
    )
    outcome = both.outcomes[0]
    assert outcome.first_stage_score == pytest.approx(first.outcomes[0].score, abs=1e-6)
    # Re-ranking only the top 1 keeps exactly the first stage's top hit.
    first_scores = first.outcomes[0].result.scores["dev"][0]
    assert outcome.result.scores["dev"][0]["recall_at_10"] == pytest.approx(first_scores["recall_at_1"], abs=1e-6)
    record = read_run_record(both.output_dir)
    assert record["kind"] == "two-stage" and record["rerank_top_k"] == 1
    assert record["tasks"]["T2Retrieval"]["settings"]["rerank_top_k"] == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "nothing to evaluate"),
        ({"reranker": "R", "tasks": ["ATEC"]}, "a reranker alone takes Reranking tasks, not ATEC"),
        ({"model": "M", "reranker": "R", "tasks": ["T2Reranking"]}, "two-stage run"),
        ({"model": "M", "reranker": "R", "rerank_top_k": 0}, "rerank-top-k"),
    ],
)
def test_bad_reranker_runs_are_user_errors(kwargs, message, samples_dir, tmp_path):
    with pytest.raises(CmtebError, match=message):
        run(data_dir=samples_dir, output_dir=tmp_path, show_progress=False, **kwargs)
