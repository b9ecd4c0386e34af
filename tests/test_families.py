"""Model families: how a model is recognised, and each family's outputs checked against code cmteb did not write.

References: FlagEmbedding 1.4.2's FlagModel, FlagLLMModel, FlagReranker and FlagLLMReranker; mteb's own
Qwen3-Embedding loader and Qwen3-Reranker wrapper. Each runs on a tiny random-weight model of the family's
architecture built in the test (a real model where the family is a BERT), in fp32: embeddings agree to a cosine of
at least 0.99999, scores to 1e-5.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from model_builders import (
    build_tiny_bert,
    build_tiny_decoder,
    build_tiny_layerwise,
    build_tiny_xlmr_cross_encoder,
    real_model_folder,
)

from cmteb.errors import CmtebError
from cmteb.models.encoder import BGEEncoder
from cmteb.models.families import EMBEDDER, FAMILIES, RERANKER, ModelFiles, read_model_files, resolve_recipe
from cmteb.models.reranker import load_reranker
from cmteb.models.sources import resolve_model
from cmteb.runner.config import resolve_config

QUERIES = ["今天北京的天气怎么样？", "这家外卖送得很快吗", "如何更换手机电池"]
PASSAGES = ["北京今天晴，气温二十度。", "外卖半小时就送到了，味道不错。", "手机电池可以在售后更换。", "好"]
PAIRS = [(q, p) for q in QUERIES for p in PASSAGES]


def _recipe(path, name, kind=EMBEDDER, pooling=None):
    return resolve_recipe(kind, read_model_files(name, path), pooling)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.fixture(scope="module")
def folders(tmp_path_factory, m3e_dir):
    """One folder per family, named as its hub repo is."""
    root = tmp_path_factory.mktemp("families")
    return {
        "bge-zh": real_model_folder(m3e_dir, root / "bge-small-zh-v1.5", {"pooling": "cls", "normalize": True}),
        "qwen3": build_tiny_decoder(root / "Qwen3-Embedding-tiny", "qwen3", eos=True, padding_side="left"),
        "gte-qwen2": build_tiny_decoder(root / "gte-Qwen2-tiny", "qwen2", eos=False, padding_side="right"),
        "gemma2": build_tiny_decoder(root / "bge-multilingual-gemma2", "gemma2", eos=False, bos=True),
        "bert-ce": build_tiny_bert(root / "bge-reranker-base", seed=1, num_labels=1),
        "xlmr-ce": build_tiny_xlmr_cross_encoder(root / "bge-reranker-v2-m3"),
        "gemma-rr": build_tiny_decoder(root / "bge-reranker-v2-gemma", "gemma", eos=False, bos=True, seed=5),
        "qwen3-rr": build_tiny_decoder(root / "Qwen3-Reranker-tiny", "qwen3", eos=False, seed=6),
        "plain-bert": build_tiny_bert(root / "some-bert", seed=7),
    }


def test_each_family_is_recognised_from_its_files_and_name(folders, m3e_dir):
    expected = {
        "bge-zh": ("bge-zh", "cls", True, None),
        "qwen3": ("qwen3-embedding", "lasttoken", True, "left"),
        "gte-qwen2": ("gte-qwen2", "lasttoken", True, None),
        "gemma2": ("bge-multilingual-gemma2", "lasttoken", True, None),
    }
    for key, wanted in expected.items():
        path = folders[key]
        recipe = _recipe(path, f"local/{path.name}")
        assert (recipe.family, recipe.pooling, recipe.normalize, recipe.padding_side) == wanted, key
    m3e = _recipe(m3e_dir, "moka-ai/m3e-small")
    assert (m3e.family, m3e.pooling, m3e.normalize) == ("m3e", "mean", False)  # as mteb loads it: no Normalize
    assert _recipe(folders["gte-qwen2"], "local/gte-Qwen2-tiny").append_eos  # mteb's add_eos_token=True
    rerankers = {"bert-ce": "bge-reranker", "xlmr-ce": "bge-reranker", "gemma-rr": "bge-reranker-gemma"}
    for key, family in {**rerankers, "qwen3-rr": "qwen3-reranker"}.items():
        assert _recipe(folders[key], f"local/{folders[key].name}", RERANKER).family == family
    # A cross-encoder no family names is still one, by its architecture.
    assert _recipe(folders["bert-ce"], "local/my-ce", RERANKER).family == "cross-encoder"


def test_sentence_transformers_files_win_over_the_family(tmp_path, m3e_dir):
    """A BGE-named folder whose files say mean pooling and no Normalize is pooled as its files say."""
    folder = real_model_folder(m3e_dir, tmp_path / "bge-base-zh-v1.5", {"pooling": "mean", "normalize": False})
    recipe = _recipe(folder, "local/bge-base-zh-v1.5")
    assert (recipe.family, recipe.pooling, recipe.normalize) == ("bge-zh", "mean", False)
    assert "with its sentence-transformers files" in recipe.recognised_by


def test_a_model_no_family_covers_is_one_line_then_runs_as_asked(folders):
    with pytest.raises(CmtebError, match=r"no model family covers local/some-bert .*--pooling cls\|mean\|lasttoken"):
        _recipe(folders["plain-bert"], "local/some-bert")
    recipe = _recipe(folders["plain-bert"], "local/some-bert", pooling="mean")
    assert recipe.family is None and recipe.pooling == "mean" and "--pooling mean" in recipe.recognised_by
    with pytest.raises(CmtebError, match="no reranker family covers"):
        _recipe(folders["qwen3"], "local/some-decoder", RERANKER)


def test_remote_code_is_refused_without_the_flag(folders, tmp_path, samples_dir):
    config = json.loads((folders["bge-zh"] / "config.json").read_text())
    folder = real_model_folder(
        folders["bge-zh"], tmp_path / "bge-small-zh-custom", {"pooling": "cls", "normalize": True}
    )
    (folder / "config.json").unlink()
    (folder / "config.json").write_text(json.dumps({**config, "auto_map": {"AutoModel": "modeling.Custom"}}))
    with pytest.raises(CmtebError, match=r"ships its own code .* --trust-remote-code"):
        resolve_config(str(folder), tasks=["ATEC"], data_dir=samples_dir)


def _ours(path, name, texts, kind=None):
    """cmteb's embeddings of `texts` (with the family's instruction for `kind`: "query" of a retrieval task)."""
    config = resolve_config(str(path), tasks=["T2Retrieval"], model_name=name)
    prefix = config.embedder.instructions["T2Retrieval"].for_input(kind)
    encoder = BGEEncoder.load(config.embedder.source, recipe=config.embedder.recipe, max_length=512)
    return encoder.encode([(prefix or "") + t for t in texts]), prefix


def test_bge_equals_flagembedding_flagmodel(folders):
    from FlagEmbedding import FlagModel

    name = "BAAI/bge-small-zh-v1.5"
    queries, prefix = _ours(folders["bge-zh"], name, QUERIES, "query")
    assert prefix == "为这个句子生成表示以用于检索相关文章："
    passages, _ = _ours(folders["bge-zh"], name, PASSAGES, "document")
    reference = FlagModel(str(folders["bge-zh"]), query_instruction_for_retrieval=prefix, use_fp16=False, devices="cpu")
    assert _cosines(queries, reference.encode_queries(QUERIES)).min() >= 0.99999
    assert _cosines(passages, reference.encode_corpus(PASSAGES)).min() >= 0.99999


@pytest.mark.parametrize(
    ("key", "name", "format"),
    [
        ("qwen3", "Qwen/Qwen3-Embedding-0.6B", "Instruct: {}\nQuery:{}"),
        ("gemma2", "BAAI/bge-multilingual-gemma2", "<instruct>{}\n<query>{}"),
    ],
)
def test_decoder_embedders_equal_flagembedding_flagllmmodel(folders, key, name, format):
    """Last-token pooling of a left- or right-padded decoder, the family's instruction format on queries only."""
    from FlagEmbedding import FlagLLMModel

    queries, prefix = _ours(folders[key], name, QUERIES, "query")
    passages, document_prefix = _ours(folders[key], name, PASSAGES, "document")
    assert document_prefix is None, "documents never get the instruction"
    # mteb's task prompt for Qwen3-Embedding; FlagEmbedding's table (which ends it with a period) for Gemma2.
    instruction = "Given a Chinese search query, retrieve web passages that answer the question"
    instruction += "." if key == "gemma2" else ""
    assert prefix == format.format(instruction, "")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = FlagLLMModel(
            str(folders[key]),
            use_fp16=False,
            devices="cpu",
            query_instruction_for_retrieval=instruction,
            query_instruction_format=format,
        )
        expected_queries, expected_passages = reference.encode_queries(QUERIES), reference.encode_corpus(PASSAGES)
    assert _cosines(queries, expected_queries).min() >= 0.99999
    assert _cosines(passages, expected_passages).min() >= 0.99999


def _scores(path, name, pairs=PAIRS, **kwargs):
    source = resolve_model(str(path), name=name)
    recipe = resolve_recipe(RERANKER, read_model_files(source.name, source.local_dir))
    return load_reranker(source, recipe=recipe, max_length=kwargs.pop("max_length", 512), **kwargs).score(pairs)


@pytest.mark.parametrize("key", ["bert-ce", "xlmr-ce"])
def test_cross_encoders_equal_flagembedding_flagreranker(folders, key):
    from FlagEmbedding import FlagReranker

    ours = _scores(folders[key], f"BAAI/{folders[key].name}")
    reference = FlagReranker(str(folders[key]), use_fp16=False, devices="cpu").compute_score([list(p) for p in PAIRS])
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-5)


def test_the_gemma_reranker_equals_flagembedding_flagllmreranker(folders):
    """bge-reranker-v2-gemma: the "Yes" logit after FlagEmbedding's prompt, queries cut at 3/4 of the length."""
    from FlagEmbedding import FlagLLMReranker

    long_pairs = [*PAIRS, ("长" * 40, "段落" * 40)]  # cut: the query at 3/4 of 32, the passage to what is left
    ours = _scores(folders["gemma-rr"], "BAAI/bge-reranker-v2-gemma", long_pairs, max_length=32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = FlagLLMReranker(str(folders["gemma-rr"]), use_fp16=False, devices="cpu", max_length=32)
        expected = reference.compute_score([list(p) for p in long_pairs])
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-5)


def test_the_qwen3_reranker_equals_mtebs_wrapper(folders):
    """Qwen3-Reranker: P("yes") of "no" and "yes" after the chat-formatted prompt, as mteb scores it."""
    from mteb.models.model_implementations.qwen3_reranker import Qwen3RerankerWrapper

    ours = _scores(folders["qwen3-rr"], "Qwen/Qwen3-Reranker-0.6B", max_length=512)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = Qwen3RerankerWrapper(str(folders["qwen3-rr"]), device="cpu", max_length=512)
        pairs = [reference.format_instruction(None, q, p) for q, p in PAIRS]
        expected = reference.compute_logits(reference.process_inputs(pairs))
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-5)


@pytest.mark.runs_model
def test_a_layerwise_reranker_scores_by_its_cutoff_layers_head(tmp_path):
    """The layerwise model's own code (auto_map, so --trust-remote-code) scores the yes-logit input at the layer
    asked for. (FlagEmbedding's LayerWiseFlagLLMReranker ships MiniCPM code written for transformers 4, which
    does not build under the locked transformers 5: this checks cmteb's use of the model's own interface.)"""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = build_tiny_layerwise(tmp_path / "bge-reranker-v2-minicpm-layerwise")
    name = "BAAI/bge-reranker-v2-minicpm-layerwise"
    with pytest.raises(CmtebError, match="trust-remote-code"):
        resolve_config(reranker=str(folder), model_name=name, tasks=["T2Reranking"])
    scores = {k: _scores(folder, name, trust_remote_code=True, cutoff=k) for k in (1, 3)}
    model = AutoModelForCausalLM.from_pretrained(str(folder), trust_remote_code=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    gemma_like = load_reranker(
        resolve_model(str(folder), name=name),
        recipe=_recipe(folder, name, RERANKER),
        trust_remote_code=True,
        max_length=512,
    )
    for layer, got in scores.items():
        expected = []
        for query, passage in PAIRS:
            ids = torch.tensor([gemma_like._yes_logit_ids(query, passage)])
            with torch.inference_mode():
                expected.append(float(model(input_ids=ids, cutoff_layers=[layer]).logits[0][0, -1, 0]))
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    assert not np.allclose(scores[1], scores[3]), "another layer's head gives other scores"
    assert tokenizer.bos_token_id == gemma_like._yes_logit_ids("a", "b")[0]


def _config_only(config: dict, name: str = "local/x") -> ModelFiles:
    """What cmteb reads of a folder holding only `config` as its config.json."""
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "config.json").write_text(json.dumps(config))
        return read_model_files(name, Path(folder))


def test_an_unrecognised_model_is_told_every_family_of_its_kind():
    embedders = [f.name for f in FAMILIES if f.kind == EMBEDDER]
    rerankers = [f.name for f in FAMILIES if f.kind == RERANKER]
    assert "bge-zh" in embedders and "qwen3-reranker" in rerankers and not set(embedders) & set(rerankers)
    with pytest.raises(CmtebError) as embedder_error:
        resolve_recipe(EMBEDDER, _config_only({"model_type": "bert", "architectures": ["BertModel"]}))
    assert str(embedder_error.value) == (
        "no model family covers local/x (bert, no sentence-transformers files): cmteb knows "
        + ", ".join(embedders)
        + ", any sentence-transformers model; run it anyway with --pooling cls|mean|lasttoken "
        "(and --instructions FILE.json for per-task instructions)"
    )
    with pytest.raises(CmtebError) as reranker_error:
        resolve_recipe(RERANKER, _config_only({}))
    assert str(reranker_error.value) == (
        "no reranker family covers local/x (unknown architecture, no architectures): cmteb runs "
        + ", ".join(rerankers)
        + ", any cross-encoder model"
    )


@pytest.mark.parametrize(
    ("labels", "cross_encoder"),
    [
        ({}, True),  # no label count: the head's one output
        ({"num_labels": 1}, True),
        ({"num_labels": 2}, False),
        ({"id2label": {"0": "LABEL_0"}}, True),
        ({"id2label": {"0": "negative", "1": "positive"}}, False),  # a two-class classifier, not a scorer
        ({"num_labels": 1, "id2label": {"0": "a", "1": "b"}}, True),  # num_labels is what transformers reads
    ],
)
def test_a_sequence_classifier_is_a_cross_encoder_by_its_one_output(labels, cross_encoder):
    files = _config_only({"model_type": "bert", "architectures": ["BertForSequenceClassification"], **labels})
    if cross_encoder:
        assert resolve_recipe(RERANKER, files).family == "cross-encoder"
    else:
        with pytest.raises(CmtebError, match="no reranker family covers local/x"):
            resolve_recipe(RERANKER, files)


@pytest.mark.parametrize(
    ("name", "model_type", "family", "instructions", "max_length"),
    [
        ("BAAI/bge-large-zh-v1.5", "bert", "bge-zh", "bge-zh", 512),
        ("BAAI/bge-small-en-v1.5", "bert", "bge-en", "bge-en", 512),
        ("BAAI/bge-large-zh-noinstruct", "bert", "bge-noinstruct", None, 512),
        ("BAAI/bge-m3", "xlm-roberta", "bge-m3", None, 8192),
    ],
)
def test_bge_models_without_sentence_transformers_files_run_as_flagmodel_runs_them(
    name, model_type, family, instructions, max_length
):
    """FlagEmbedding's FlagModel: CLS pooling, L2-normalised, the query instruction of BGE's README (zh or en;
    none for the noinstruct and m3 models); bge-m3 reads 8192 tokens."""
    recipe = resolve_recipe(EMBEDDER, _config_only({"model_type": model_type}, name))
    assert (recipe.family, recipe.pooling, recipe.normalize, recipe.max_length) == (family, "cls", True, max_length)
    assert (recipe.kind, recipe.instructions.source, recipe.instructions.texts) == (EMBEDDER, instructions, False)
    assert recipe.reference.startswith("FlagEmbedding")


def test_an_unrecognised_reranker_is_named_with_every_architecture_of_its_config():
    files = _config_only({"model_type": "bert", "architectures": ["BertModel", "BertForMaskedLM"]})
    with pytest.raises(CmtebError, match=r"^no reranker family covers local/x \(bert, BertModel, BertForMaskedLM\): "):
        resolve_recipe(RERANKER, files)
