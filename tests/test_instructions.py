"""The retrieval instruction goes on Retrieval/Reranking queries only, never on passages or other tasks."""

from __future__ import annotations

import mteb
import pytest

from cmteb.models.adapter import BGEModel
from cmteb.models.defaults import EN_INSTRUCTION, ZH_INSTRUCTION, default_instruction, default_pooling
from cmteb.models.encoder import BGEEncoder
from cmteb.tasks.build import build_task
from cmteb.tasks.registry import load_registry


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("BAAI/bge-large-zh-v1.5", ZH_INSTRUCTION),
        ("BAAI/bge-small-zh", ZH_INSTRUCTION),
        ("bge-base-zh-v1.5", ZH_INSTRUCTION),
        ("BAAI/bge-large-en-v1.5", EN_INSTRUCTION),
        ("BAAI/bge-large-zh-noinstruct", None),
        ("BAAI/bge-m3", None),
        ("BAAI/bge-reranker-large", None),
        ("moka-ai/m3e-base", None),
        ("intfloat/multilingual-e5-large", None),
    ],
)
def test_default_instruction_per_model(model, expected):
    assert default_instruction(model) == expected


def test_default_pooling():
    assert default_pooling("moka-ai/m3e-small") == "mean"
    assert default_pooling("BAAI/bge-large-zh-v1.5") is None


@pytest.fixture()
def spy_model(tiny_bert):
    encoder = BGEEncoder.load(str(tiny_bert))
    seen: list[tuple[str, list[str]]] = []
    real_encode = encoder.encode

    def spy(texts, **kwargs):
        seen.append((current_task[0], list(texts)))
        return real_encode(texts, **kwargs)

    current_task = [""]
    encoder.encode = spy
    return BGEModel(encoder, instruction="指令：", on_batch=None), seen, current_task


@pytest.mark.parametrize(
    "task_name", ["T2Retrieval", "T2Reranking", "T2RerankingEn2Zh", "ATEC", "Ocnli", "TNews", "CLSClusteringS2S"]
)
def test_instruction_only_on_retrieval_and_reranking_queries(spy_model, samples_dir, task_name):
    model, seen, current = spy_model
    spec = load_registry().get(task_name)
    task = build_task(spec, samples_dir)
    current[0] = task_name
    mteb.evaluate(
        model,
        task,
        cache=None,
        overwrite_strategy="always",
        show_progress_bar=False,
        encode_kwargs={"batch_size": 16, "show_progress_bar": False},
    )
    instructed = [t for _, texts in seen for t in texts if t.startswith("指令：")]
    plain = [t for _, texts in seen for t in texts if not t.startswith("指令：")]
    task.load_data()
    if spec.type in ("Retrieval", "Reranking"):
        split = task.dataset["default"][spec.splits[0]]
        queries = set(split["queries"]["text"])
        passages = {(r["title"] + " " + r["text"]).strip() for r in split["corpus"]}
        assert {t.removeprefix("指令：") for t in instructed} == queries
        assert set(plain) <= passages and plain
        assert model.instructions_used[task_name] == "指令："
    else:
        assert instructed == [] and plain
        assert model.instructions_used.get(task_name) is None
