"""Instructions as data: what each input of each task gets, from which source, checked against the registry."""

from __future__ import annotations

import json

import mteb
import pytest
import yaml
from model_builders import build_tiny_decoder

from cmteb.cli import main
from cmteb.errors import CmtebError
from cmteb.models.adapter import BGEModel
from cmteb.models.encoder import BGEEncoder
from cmteb.models.instructions import INSTRUCTIONS_DIR, InstructionSource, check_keys
from cmteb.runner.config import resolve_config
from cmteb.tasks.build import build_task
from cmteb.tasks.protocols import known_tasks
from cmteb.tasks.registry import load_registry

ZH = "为这个句子生成表示以用于检索相关文章："
EN = "Represent this sentence for searching relevant passages: "
TASKS = ["T2Retrieval", "T2Reranking", "ATEC", "Ocnli", "TNews", "CLSClusteringS2S", "CMedQAv1-reranking"]


def _plan(model, name=None, **options):
    config = resolve_config(str(model), tasks=TASKS, model_name=name, **options)
    return config.embedder.instructions


@pytest.mark.parametrize(
    ("name", "query"),
    [
        ("BAAI/bge-large-zh-v1.5", ZH),
        ("BAAI/bge-small-zh", ZH),
        ("BAAI/bge-large-en-v1.5", EN),
        ("BAAI/bge-large-zh-noinstruct", None),
        ("BAAI/bge-m3", None),
        ("moka-ai/m3e-base", None),
        ("intfloat/multilingual-e5-large", None),  # a sentence-transformers folder without prompts
    ],
)
def test_bert_families_instruct_retrieval_queries_only(tiny_bert, name, query):
    plan = _plan(tiny_bert, name)
    for task in ("T2Retrieval", "T2Reranking", "CMedQAv1-reranking"):
        assert (plan[task].query, plan[task].document) == (query, None)
    for task in ("ATEC", "Ocnli", "TNews", "CLSClusteringS2S"):
        assert plan[task].text is None


@pytest.fixture(scope="module")
def qwen3(tmp_path_factory):
    return build_tiny_decoder(tmp_path_factory.mktemp("q") / "Qwen3-Embedding-tiny", "qwen3")


def test_qwen3_embedding_gets_mtebs_task_prompts_in_its_template_on_queries_and_texts(qwen3):
    plan = _plan(qwen3, "Qwen/Qwen3-Embedding-0.6B")
    retrieval = "Instruct: Given a Chinese search query, retrieve web passages that answer the question\nQuery:"
    assert (plan["T2Retrieval"].query, plan["T2Retrieval"].document) == (retrieval, None)
    assert plan["ATEC"].text == "Instruct: Retrieve semantically similar text.\nQuery:"  # mteb's STS default
    assert plan["TNews"].text == "Instruct: Classify the fine-grained category of the given news title\nQuery:"
    assert (
        plan["T2Retrieval"].source
        == "embeddings-benchmark/mteb: "
        + yaml.safe_load((INSTRUCTIONS_DIR / "mteb.yaml").read_text(encoding="utf-8"))["source"]["file"]
        + " at v2.26.24"
    )


def test_the_flagembedding_table_reaches_the_cmedqa_reranking_tasks(tmp_path):
    """FlagEmbedding's own table says CMedQAv1 (no mteb 2 task): the shipped source names the task it means."""
    gemma = build_tiny_decoder(tmp_path / "bge-multilingual-gemma2", "gemma2", eos=False, bos=True)
    plan = _plan(gemma, "BAAI/bge-multilingual-gemma2")
    expected = "Given a Chinese community medical question, retrieve replies that best answer the question."
    assert plan["CMedQAv1-reranking"].query == f"<instruct>{expected}\n<query>"
    bad = InstructionSource("x", {"CMedQAv1": "some instruction"}, {}, "a test source")
    with pytest.raises(CmtebError, match=r"'CMedQAv1' names no registered task \(did you mean CMedQAv1-reranking\?\)"):
        check_keys(bad, list(known_tasks()))


def test_ones_own_instructions_file_wins_task_by_task_through_the_template(qwen3, tmp_path, samples_dir):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"T2Retrieval": "找网页", "ATEC": {"query": "找相似句"}}, ensure_ascii=False))
    plan = _plan(qwen3, "Qwen/Qwen3-Embedding-0.6B", instructions=path)
    assert (
        plan["T2Retrieval"].query == "Instruct: 找网页\nQuery:"
        and plan["T2Retrieval"].source == f"--instructions {path}"
    )
    assert plan["ATEC"].text == "Instruct: 找相似句\nQuery:"
    assert plan["TNews"].source.startswith("embeddings-benchmark/mteb")  # not in the file: the family's own
    config = resolve_config(str(qwen3), tasks=["ATEC"], data_dir=samples_dir, instructions=path)
    assert config.variant["instruction"] == __import__("hashlib").sha256(path.read_bytes()).hexdigest()[:8]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"CMedQAv1": "x"}, "names no registered task (did you mean CMedQAv1-reranking?)"),
        ({"ATEC": {"passage": "x"}}, 'must be a text or an object with "query" and/or "document" texts'),
        (["ATEC"], "holds a list: pass an object of task name -> text"),
    ],
)
def test_a_bad_instructions_file_is_one_line(tiny_bert, tmp_path, samples_dir, capsys, content, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(content))
    args = ["run", "--model", str(tiny_bert), "--tasks", "ATEC", "--data-dir", str(samples_dir)]
    assert main([*args, "--instructions", str(path), "--output-dir", str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and not (tmp_path / "out").exists()


def test_cmteb_instructions_prints_each_side_and_its_source(qwen3, capsys):
    assert main(["instructions", "--model", str(qwen3), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["recipe"]["family"] == "qwen3-embedding" and shown["recipe"]["pooling"] == "lasttoken"
    assert shown["tasks"]["T2Retrieval"]["document"] is None
    assert shown["tasks"]["ATEC"]["text"].startswith("Instruct: ")
    assert main(["instructions", "--model", str(qwen3)]) == 0
    assert "T2Retrieval" in capsys.readouterr().out


def test_shipped_instruction_files_equal_a_rebuild_from_the_locked_packages():
    from tools.build_instructions import flagembedding_prompts, mteb_prompts, render

    for data in (mteb_prompts(), flagembedding_prompts()):
        assert (INSTRUCTIONS_DIR / f"{data['id']}.yaml").read_text(encoding="utf-8") == render(data)


@pytest.mark.parametrize("task_name", ["T2Retrieval", "T2RerankingEn2Zh", "ATEC", "Ocnli", "TNews", "CLSClusteringS2S"])
def test_each_input_gets_what_the_plan_says_and_documents_nothing(qwen3, samples_dir, task_name):
    """mteb's own evaluation hands the model queries with the query instruction, documents bare, and the texts
    of the other task types with the text instruction."""
    config = resolve_config(str(qwen3), tasks=[task_name], data_dir=samples_dir, model_name="Qwen/Qwen3-Embedding-0.6B")
    encoder = BGEEncoder.load(config.embedder.source, recipe=config.embedder.recipe)
    seen: list[str] = []
    real_encode = encoder.encode
    encoder.encode = lambda texts, **kwargs: seen.extend(texts) or real_encode(texts, **kwargs)
    model = BGEModel(encoder, instructions=config.embedder.instructions)
    task = build_task(load_registry().get(task_name), samples_dir)
    mteb.evaluate(model, task, cache=None, overwrite_strategy="always", show_progress_bar=False)
    planned = config.embedder.instructions[task_name]
    if planned.query is not None:  # a search task: queries with it, documents without
        assert any(t.startswith(planned.query) for t in seen) and any(not t.startswith("Instruct:") for t in seen)
    elif planned.text is not None:
        assert seen and all(t.startswith(planned.text) for t in seen)
    else:  # the cross-lingual extras are not mteb's: mteb has no prompt for them
        assert seen and not any(t.startswith("Instruct:") for t in seen)
