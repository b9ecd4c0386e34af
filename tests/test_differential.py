"""cmteb's scores equal plain mteb's on the same model and data.

The reference path is `mteb.evaluate` with mteb's own sentence-transformers wrapper around a
SentenceTransformer built from the same weights (same pooling, normalised, same instruction
as a prompt on Retrieval/Reranking queries).
"""

from __future__ import annotations

import math
import warnings

import mteb
import pytest
from mteb.models.sentence_transformer_wrapper import SentenceTransformerEncoderWrapper

from cmteb.models.defaults import ZH_INSTRUCTION
from cmteb.runner import run
from cmteb.tasks.build import build_task
from cmteb.tasks.registry import load_registry

ALL_TASKS = load_registry().names()
#: One or two tasks of every type, for the second (random-weights) model.
TASKS_PER_TYPE = [
    "T2Retrieval",
    "EcomRetrieval",
    "ATEC",
    "QBQTC",
    "Ocnli",
    "TNews",
    "MultilingualSentiment",
    "T2Reranking",
    "T2RerankingZh2En",
    "CLSClusteringP2P",
]


def plain_mteb(model_dir, pooling, task_names, samples_dir, instruction, max_length=512):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Normalize, Pooling, Transformer

    transformer = Transformer(str(model_dir), max_seq_length=max_length)
    st = SentenceTransformer(
        modules=[transformer, Pooling(transformer.get_embedding_dimension(), pooling_mode=pooling), Normalize()],
        device="cpu",
    )
    prompts = {"Retrieval-query": instruction, "Reranking-query": instruction} if instruction else None
    wrapper = SentenceTransformerEncoderWrapper(st, model_prompts=prompts)
    registry = load_registry()
    results = {}
    for name in task_names:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = mteb.evaluate(
                wrapper,
                build_task(registry.get(name), samples_dir, in_memory=False),
                cache=None,
                overwrite_strategy="always",
                show_progress_bar=False,
                encode_kwargs={"batch_size": 32, "show_progress_bar": False},
            )
        results[name] = res.task_results[0]
    return results


def compare(ours, theirs):
    """Largest absolute difference over every numeric score of every split and subset."""
    worst = 0.0
    assert set(ours.scores) == set(theirs.scores)
    for split, subsets in theirs.scores.items():
        for a, b in zip(ours.scores[split], subsets, strict=True):
            for key, value in b.items():
                if isinstance(value, (int, float)) and not (isinstance(value, float) and math.isnan(value)):
                    worst = max(worst, abs(float(a[key]) - float(value)))
    return worst


def report(title, ours, theirs):
    lines = [title, f"{'task':24} {'cmteb':>10} {'mteb':>10} {'max |diff|':>12}"]
    for name in ours:
        lines.append(
            f"{name:24} {ours[name].get_score():10.6f} {theirs[name].get_score():10.6f} "
            f"{compare(ours[name], theirs[name]):12.2e}"
        )
    print("\n".join(lines))


def test_m3e_small_on_every_sample_task_equals_plain_mteb(m3e_dir, samples_dir, tmp_path):
    summary = run(
        str(m3e_dir),
        data_dir=samples_dir,
        output_dir=tmp_path,
        pooling="mean",
        instruction=ZH_INSTRUCTION,
        show_progress=False,
        model_name="moka-ai/m3e-small",
    )
    ours = {o.spec.name: o.result for o in summary.outcomes}
    theirs = plain_mteb(m3e_dir, "mean", ALL_TASKS, samples_dir, ZH_INSTRUCTION)
    report("m3e-small, all sample tasks", ours, theirs)
    for name in ALL_TASKS:
        assert ours[name].get_score() == pytest.approx(theirs[name].get_score(), abs=1e-6), name
        assert compare(ours[name], theirs[name]) <= 1e-6, name


def test_truncated_model_with_cls_pooling_equals_plain_mteb(m3e_dir, samples_dir, tmp_path):
    """m3e-small read to 8 tokens with CLS pooling: middling, non-saturated scores, so every rank
    position matters. (A randomly initialised model is no use here: its embeddings are nearly
    collinear and float32 cosines tie, so rankings follow float noise.)"""
    summary = run(
        str(m3e_dir),
        tasks=TASKS_PER_TYPE,
        data_dir=samples_dir,
        output_dir=tmp_path,
        pooling="cls",
        max_length=8,
        show_progress=False,
        model_name="moka-ai/m3e-small",
    )
    ours = {o.spec.name: o.result for o in summary.outcomes}
    theirs = plain_mteb(m3e_dir, "cls", TASKS_PER_TYPE, samples_dir, None, max_length=8)
    report("m3e-small, 8 tokens, CLS pooling", ours, theirs)
    for name in TASKS_PER_TYPE:
        assert ours[name].get_score() == pytest.approx(theirs[name].get_score(), abs=1e-6), name
        assert compare(ours[name], theirs[name]) <= 1e-6, name
