"""The `bm25` lexical baseline: its scores against a direct bm25s computation and a hand-computed TF-IDF
case, its row in the leaderboard, resume and the result store, and refused settings."""

from __future__ import annotations

import math

import numpy as np
import pytest
import pytrec_eval
from sklearn.metrics import average_precision_score
from sklearn.utils import murmurhash3_32

from cmteb.cli import main
from cmteb.errors import CmtebError
from cmteb.models.lexical.settings import LexicalSettings
from cmteb.models.lexical.tfidf import TfidfProjector
from cmteb.models.lexical.tokens import chinese_bigrams, jieba_words
from cmteb.results.files import read_run_record
from cmteb.runner import run
from cmteb.tasks.build import build_task, load_task_data
from cmteb.tasks.protocols import resolve_protocol

TASKS = ["T2Retrieval", "T2Reranking", "ATEC", "TNews"]


@pytest.fixture(scope="module")
def bm25_run(tmp_path_factory):
    from cmteb.assets import SAMPLES_DIR

    out = tmp_path_factory.mktemp("bm25")
    return run("bm25", tasks=TASKS, data_dir=SAMPLES_DIR, output_dir=out, show_progress=False), out


def _sample_split(name: str, samples_dir):
    spec = resolve_protocol(None).select([name], None)[0]
    task = build_task(spec, samples_dir)
    load_task_data(task, spec, samples_dir)
    return next(iter(task.dataset["default"].values()))


def _direct_bm25(corpus, queries) -> tuple[object, dict[str, int], list[list[str]]]:
    """bm25s by hand: bigram tokens, the tokens of 90 % of documents or more dropped (as mteb's BM25 does when
    no stopword list is given), bm25s' defaults."""
    import bm25s

    docs = [chinese_bigrams("\n".join([row["title"], row["text"]])) for row in corpus]
    frequency: dict[str, int] = {}
    for tokens in docs:
        for token in set(tokens):
            frequency[token] = frequency.get(token, 0) + 1
    common = {t for t, df in frequency.items() if df / len(docs) >= 0.9}
    retriever = bm25s.BM25(k1=1.5, b=0.75, method="lucene")
    retriever.index([[t for t in d if t not in common] for d in docs], show_progress=False)
    query_tokens = [[t for t in chinese_bigrams(q) if t not in common] for q in queries["text"]]
    return retriever, {row["id"]: k for k, row in enumerate(corpus)}, query_tokens


def test_chinese_tokens():
    assert chinese_bigrams("北京大学 AI２０２４") == ["北京", "京大", "大学", "ai2024"]
    assert chinese_bigrams("我，爱") == ["我", "爱"]
    assert jieba_words("我爱北京天安门！") == ["我", "爱", "北京", "天安门"]


def test_corpus_counts_and_bm25_weights_equal_token_by_token_bm25s(samples_dir):
    from collections import Counter

    import bm25s

    from cmteb.models.lexical.bm25 import CountsBM25, bigram_counts

    tricky = [
        "北京大学 AI２０２４",
        "我，爱",
        "好…啊㎏",
        "ΑΣ ΟΔΟΣ",
        "e\u0301cole 한국어",
        "😀北京",
        "",
        "今天abc北京x\n好",
    ]
    corpus = _sample_split("T2Retrieval", samples_dir)["corpus"]
    texts = tricky + list(corpus["text"])
    counts, vocabulary = bigram_counts(texts)
    for k, text in enumerate(texts):
        row = counts[k]
        assert {vocabulary[c]: int(n) for c, n in zip(row.indices, row.data, strict=True)} == Counter(
            chinese_bigrams(text)
        ), text
    reference = bm25s.BM25(k1=1.5, b=0.75, method="lucene")
    reference.index([chinese_bigrams(t) for t in texts], show_progress=False)
    ours = CountsBM25(k1=1.5, b=0.75, method="lucene")
    ours.index_counts(counts, vocabulary)
    for query in ["北京今天天气", "好", "ok 天气", "产品质量"]:
        tokens = chinese_bigrams(query)
        assert np.abs(ours.get_scores(tokens) - reference.get_scores(tokens)).max() < 1e-5


def test_retrieval_equals_a_direct_bm25s_computation(bm25_run, samples_dir):
    summary, _ = bm25_run
    split = _sample_split("T2Retrieval", samples_dir)
    retriever, position, query_tokens = _direct_bm25(split["corpus"], split["queries"])
    run_scores = {}
    for query_id, tokens in zip(split["queries"]["id"], query_tokens, strict=True):
        scores = retriever.get_scores(tokens)
        run_scores[query_id] = {doc: float(scores[k]) for doc, k in position.items()}
    evaluator = pytrec_eval.RelevanceEvaluator(split["relevant_docs"], {"ndcg_cut.10", "recall.100"})
    per_query = evaluator.evaluate(run_scores)
    result = next(o for o in summary.outcomes if o.spec.name == "T2Retrieval").result.scores["dev"][0]
    assert result["ndcg_at_10"] == pytest.approx(np.mean([v["ndcg_cut_10"] for v in per_query.values()]), abs=1e-5)
    assert result["recall_at_100"] == pytest.approx(np.mean([v["recall_100"] for v in per_query.values()]), abs=1e-5)
    assert 0.3 < result["ndcg_at_10"] < 1.0, "a lexical floor: neither nothing nor everything"


def test_reranking_scores_every_candidate_as_bm25s_does(bm25_run, samples_dir):
    summary, _ = bm25_run
    split = _sample_split("T2Reranking", samples_dir)
    retriever, position, query_tokens = _direct_bm25(split["corpus"], split["queries"])
    precisions = []
    for query_id, tokens in zip(split["queries"]["id"], query_tokens, strict=True):
        candidates = split["top_ranked"][query_id]
        scores = retriever.get_scores(tokens)
        relevant = [int(split["relevant_docs"][query_id].get(d, 0) > 0) for d in candidates]
        precisions.append(average_precision_score(relevant, [scores[position[d]] for d in candidates]))
    result = next(o for o in summary.outcomes if o.spec.name == "T2Reranking").result.scores["dev"][0]
    assert result["map_at_1000"] == pytest.approx(np.mean(precisions), abs=1e-5)


def test_tfidf_vectors_equal_a_hand_computation():
    settings = LexicalSettings(width=64, hashed_features=2**12)
    projector = TfidfProjector(settings).fit(["好好", "好人"])
    # Smooth idf: ln((1 + n) / (1 + df)) + 1 with n = 2 documents; sublinear tf: 1 + ln(tf); rows L2-normalised.
    idf = {"好": 1.0, "好好": math.log(3 / 2) + 1, "人": math.log(3 / 2) + 1, "好人": math.log(3 / 2) + 1}
    tf = {"好": 1 + math.log(2), "好好": 1.0}
    expected = {gram: tf[gram] * idf[gram] for gram in tf}
    norm = math.sqrt(sum(v * v for v in expected.values()))
    weights = projector.weights(["好好"]).toarray()[0]
    for gram, value in expected.items():
        column = abs(murmurhash3_32(gram, seed=0)) % settings.hashed_features  # sklearn's FeatureHasher index
        assert weights[column] == pytest.approx(value / norm, abs=1e-12)
    assert np.count_nonzero(weights) == len(expected)
    projection = projector.matrix.toarray()
    assert np.count_nonzero(projection, axis=1).min() > 0, "every hashed n-gram reaches some dimension"
    dense = weights @ projection
    assert projector.embed(["好好"])[0] == pytest.approx(dense / np.linalg.norm(dense), abs=1e-6)
    again = TfidfProjector(settings).fit(["好好", "好人"]).embed(["好好", "人"])
    assert np.array_equal(again, projector.embed(["好好", "人"])), "deterministic"


def test_the_run_records_its_settings_and_resumes(bm25_run, samples_dir, tmp_path, capsys):
    summary, out = bm25_run
    folder = summary.outcomes[0].path.parent
    record = read_run_record(folder)
    assert record["kind"] == "lexical baseline" and record["model"] == "cmteb/bm25"
    assert record["lexical"] == {
        "tokenizer": "char-bigram",
        "k1": 1.5,
        "b": 0.75,
        "method": "lucene",
        "ngram_range": [1, 2],
        "hashed_features": 2**18,
        "width": 768,
        "features_per_dimension": 16,
        "seed": 0,
    }
    assert folder.name == LexicalSettings().fingerprint()
    again = run("bm25", tasks=TASKS, data_dir=samples_dir, output_dir=out, show_progress=False)
    assert {o.status for o in again.outcomes} == {"skipped"}
    # The result store (this test's own cache folder): a run into a new folder copies what an earlier one stored.
    common = {"tasks": ["ATEC", "T2Retrieval"], "data_dir": samples_dir, "show_progress": False}
    first = run("bm25", output_dir=tmp_path / "first", **common)
    second = run("bm25", output_dir=tmp_path / "second", **common)
    assert [o.status for o in first.outcomes] == ["ran", "ran"]
    assert [o.status for o in second.outcomes] == ["reused", "reused"]
    assert [o.score for o in second.outcomes] == [o.score for o in first.outcomes]
    earlier = {o.spec.name: o.score for o in summary.outcomes}
    assert all(o.score == earlier[o.spec.name] for o in first.outcomes), "deterministic"


def test_the_leaderboard_marks_the_baseline_row(bm25_run, capsys):
    _, out = bm25_run
    assert main(["leaderboard", "--results", str(out), "--no-reference", "--out", str(out / "lb")]) == 0
    table = (out / "lb" / "leaderboard.md").read_text(encoding="utf-8")
    assert "| cmteb/bm25 " in table and "| lexical baseline, measured on samples |" in table


def test_settings_of_a_network_are_refused_for_bm25(samples_dir):
    for option in ({"pooling": "cls"}, {"instruction": "x"}, {"devices": "cpu,cpu"}):
        with pytest.raises(CmtebError, match=r"bm25 is a lexical baseline without a network: drop --"):
            run("bm25", tasks=["ATEC"], data_dir=samples_dir, show_progress=False, **option)


def test_queries_without_a_known_token_score_zero():
    import datasets

    from cmteb.models.lexical.settings import lexical_search

    search = lexical_search(LexicalSettings())
    queries = datasets.Dataset.from_list([{"id": "q", "text": "你好"}, {"id": "empty", "text": ""}])
    same = [{"id": d, "title": "", "text": "你好"} for d in "ab"]  # every token in every document: all left out
    search.index(datasets.Dataset.from_list(same))
    assert search.search(queries, top_k=10) == {"q": {"a": 0.0, "b": 0.0}, "empty": {"a": 0.0, "b": 0.0}}
    assert search.search(queries, top_k=10, top_ranked={"q": ["a"], "empty": ["b"]}) == {
        "q": {"a": 0.0},
        "empty": {"b": 0.0},
    }
    varied = [{"id": "a", "title": "", "text": "你好"}, {"id": "b", "title": "", "text": "天气"}]
    search.index(datasets.Dataset.from_list(varied))
    found = search.search(queries, top_k=1)
    assert list(found["q"]) == ["a"] and found["q"]["a"] > 0 and list(found["empty"].values()) == [0.0]
