"""Each way a model is recognised, and the whole recipe it resolves to, field by field (written out by hand from
the families' references: FlagEmbedding's FlagModel and FlagLLMModel, mteb's loaders, sentence-transformers).
tests/test_families.py runs the recipes on real and tiny models against those references."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cmteb.errors import CmtebError
from cmteb.models.families import (
    CROSS_ENCODER,
    EMBEDDER,
    ENCODER,
    GTE_QWEN2_TEMPLATE,
    LAYERWISE,
    QWEN3_TEMPLATE,
    RERANKER,
    YES_LOGIT,
    YES_NO,
    ModelFiles,
    ModelRecipe,
    read_model_files,
    resolve_recipe,
)
from cmteb.models.instructions import InstructionStyle
from cmteb.models.st_files import SentenceTransformerFiles

NO_ST = SentenceTransformerFiles()


def _files(name: str, model_type: str | None, architectures=(), st=NO_ST, config=None) -> ModelFiles:
    return ModelFiles(name, model_type, tuple(architectures), False, st, config or {})


def _named(name: str, model_type: str | None) -> str:
    return f"its name {name} and config.json model_type {model_type or 'to be read'}"


FLAGMODEL = "FlagEmbedding FlagModel"

RECIPES = {
    "bge-zh": (
        _files("BAAI/bge-large-zh-v1.5", "bert", ["BertModel"]),
        ModelRecipe("bge-zh", _named("BAAI/bge-large-zh-v1.5", "bert"), EMBEDDER, ENCODER, "cls", True,
                    instructions=InstructionStyle("bge-zh"), reference=FLAGMODEL),
    ),
    "bge-zh before download": (
        _files("BAAI/bge-small-zh", None),
        ModelRecipe("bge-zh", _named("BAAI/bge-small-zh", None), EMBEDDER, ENCODER, "cls", True,
                    instructions=InstructionStyle("bge-zh"), reference=FLAGMODEL),
    ),
    "bge-m3": (
        _files("BAAI/bge-m3", "xlm-roberta"),
        ModelRecipe("bge-m3", _named("BAAI/bge-m3", "xlm-roberta"), EMBEDDER, ENCODER, "cls", True, max_length=8192,
                    reference="FlagEmbedding BGEM3FlagModel (dense)"),
    ),
    "m3e": (
        _files("moka-ai/m3e-base", "bert"),
        ModelRecipe("m3e", _named("moka-ai/m3e-base", "bert"), EMBEDDER, ENCODER, "mean", False,
                    reference="mteb's sentence-transformers path"),
    ),
    "qwen3-embedding": (
        _files("Qwen/Qwen3-Embedding-0.6B", "qwen3", ["Qwen3ForCausalLM"]),
        ModelRecipe("qwen3-embedding", _named("Qwen/Qwen3-Embedding-0.6B", "qwen3"), EMBEDDER, ENCODER, "lasttoken",
                    True, padding_side="left", max_length=8192,
                    instructions=InstructionStyle("mteb", QWEN3_TEMPLATE, texts=True),
                    reference="mteb's Qwen3-Embedding loader; FlagEmbedding FlagLLMModel", decoder=True),
    ),
    "gte-qwen2": (
        _files("Alibaba-NLP/gte-Qwen2-1.5B-instruct", "qwen2"),
        ModelRecipe("gte-qwen2", _named("Alibaba-NLP/gte-Qwen2-1.5B-instruct", "qwen2"), EMBEDDER, ENCODER,
                    "lasttoken", True, append_eos=True, max_length=8192,
                    instructions=InstructionStyle("mteb", GTE_QWEN2_TEMPLATE, texts=True),
                    reference="mteb's gte-Qwen2 loader", decoder=True),
    ),
    "bge-reranker": (
        _files("BAAI/bge-reranker-v2-m3", "xlm-roberta", ["XLMRobertaForSequenceClassification"]),
        ModelRecipe("bge-reranker", _named("BAAI/bge-reranker-v2-m3", "xlm-roberta"), RERANKER, CROSS_ENCODER,
                    reference="FlagEmbedding FlagReranker"),
    ),
    "bge-reranker-gemma": (
        _files("BAAI/bge-reranker-v2-gemma", "gemma", ["GemmaForCausalLM"]),
        ModelRecipe("bge-reranker-gemma", _named("BAAI/bge-reranker-v2-gemma", "gemma"), RERANKER, YES_LOGIT,
                    padding_side="left", gpu_precision="bf16", reference="FlagEmbedding FlagLLMReranker",
                    decoder=True),
    ),
    "bge-reranker-layerwise": (
        _files("BAAI/bge-reranker-v2-minicpm-layerwise", "minicpm"),
        ModelRecipe("bge-reranker-layerwise", _named("BAAI/bge-reranker-v2-minicpm-layerwise", "minicpm"), RERANKER,
                    LAYERWISE, padding_side="left", gpu_precision="bf16",
                    reference="FlagEmbedding LayerWiseFlagLLMReranker", decoder=True),
    ),
    "qwen3-reranker": (
        _files("Qwen/Qwen3-Reranker-0.6B", "qwen3"),
        ModelRecipe("qwen3-reranker", _named("Qwen/Qwen3-Reranker-0.6B", "qwen3"), RERANKER, YES_NO,
                    padding_side="left", max_length=8192, decoder=True,
                    reference="mteb's Qwen3-Reranker wrapper (QwenLM/Qwen3-Embedding examples/"
                              "qwen3_reranker_transformers.py)"),
    ),
    "cross-encoder": (
        _files("local/my-ce", "bert", ["BertForSequenceClassification"]),
        ModelRecipe("cross-encoder", "config.json architecture BertForSequenceClassification with one output",
                    RERANKER, CROSS_ENCODER, reference="FlagEmbedding FlagReranker"),
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", RECIPES)
def test_each_family_resolves_to_its_whole_recipe(case):
    files, expected = RECIPES[case]
    assert resolve_recipe(expected.kind, files) == expected


def test_a_decoder_is_known_by_its_type_or_its_causal_lm_head():
    recipe = resolve_recipe(EMBEDDER, _files("local/x", "llama"), "lasttoken")
    assert recipe.decoder
    assert resolve_recipe(EMBEDDER, _files("local/x", "mystery", ["MysteryForCausalLM"]), "lasttoken").decoder
    assert not resolve_recipe(EMBEDDER, _files("local/x", "bert", ["BertModel"]), "cls").decoder


def test_a_name_whose_architecture_does_not_fit_is_not_that_family():
    with pytest.raises(CmtebError, match=r"^no model family covers BAAI/bge-large-zh-v1\.5 \(llama, "):
        resolve_recipe(EMBEDDER, _files("BAAI/bge-large-zh-v1.5", "llama"))
    with pytest.raises(CmtebError, match=r"^no reranker family covers BAAI/bge-m3 "):
        resolve_recipe(RERANKER, _files("BAAI/bge-m3", "xlm-roberta"))  # an embedder's name, asked as reranker


ST = SentenceTransformerFiles(
    present=True, pooling="mean", normalize=True, dense=("2_Dense",), max_seq_length=256, include_prompt=True
)


def test_sentence_transformers_files_say_how_a_folder_runs():
    recipe = resolve_recipe(EMBEDDER, _files("local/st", "bert", st=ST))
    assert recipe == ModelRecipe(
        "sentence-transformers", "its sentence-transformers files", EMBEDDER, ENCODER, "mean", True,
        dense=("2_Dense",), max_length=256, instructions=InstructionStyle("sentence-transformers"),
        reference="mteb's sentence-transformers wrapper",
    )  # fmt: skip


def test_sentence_transformers_files_win_over_a_family_and_leave_it_what_they_do_not_say():
    files = _files("BAAI/bge-large-zh-v1.5", "bert", st=ST)
    recipe = resolve_recipe(EMBEDDER, files)
    assert recipe.recognised_by == _named("BAAI/bge-large-zh-v1.5", "bert") + ", with its sentence-transformers files"
    assert (recipe.family, recipe.pooling, recipe.normalize, recipe.dense, recipe.max_length) == (
        "bge-zh", "mean", True, ("2_Dense",), 256,
    )  # fmt: skip
    silent = SentenceTransformerFiles(present=True)  # no Pooling module, no max_seq_length, no Normalize
    recipe = resolve_recipe(EMBEDDER, _files("BAAI/bge-large-zh-v1.5", "bert", st=silent))
    assert (recipe.pooling, recipe.normalize, recipe.max_length) == ("cls", False, 512)


def test_asked_pooling_wins_and_runs_a_model_no_family_covers():
    recipe = resolve_recipe(EMBEDDER, _files("local/plain", "bert"), "mean")
    assert recipe == ModelRecipe(None, "--pooling mean: no family covers it", EMBEDDER, ENCODER, "mean", True)
    assert recipe.describe() == "no family (--pooling mean: no family covers it), mean pooling, normalised"
    assert resolve_recipe(EMBEDDER, _files("local/st", "bert", st=ST), "cls").pooling == "cls"
    assert resolve_recipe(EMBEDDER, _files("BAAI/bge-small-zh", "bert"), "mean").family == "bge-zh"


def test_a_recipe_in_words_and_as_the_record_keeps_it():
    _files_bge, bge = RECIPES["bge-zh"]
    assert bge.describe() == f"family bge-zh ({_named('BAAI/bge-large-zh-v1.5', 'bert')}), cls pooling, normalised"
    _files_m3e, m3e = RECIPES["m3e"]
    assert m3e.describe().endswith(", mean pooling, not normalised")
    _files_rr, reranker = RECIPES["bge-reranker"]
    assert reranker.describe() == f"family bge-reranker ({_named('BAAI/bge-reranker-v2-m3', 'xlm-roberta')})"
    record = bge.as_record()
    assert record["family"] == "bge-zh" and record["pooling"] == "cls" and record["dense"] == ()
    assert record["instructions"]["source"] == "bge-zh"
    assert ModelRecipe(**{**record, "instructions": bge.instructions}) == bge


def test_what_cmteb_cannot_compute_is_refused_in_one_line():
    odd = SentenceTransformerFiles(present=True, pooling="max")
    with pytest.raises(CmtebError) as err:
        resolve_recipe(EMBEDDER, _files("local/odd", "bert", st=odd))
    assert str(err.value) == (
        "local/odd pools by 'max' (its sentence-transformers Pooling config): cmteb computes cls, mean, lasttoken; "
        "pass --pooling to run it with one of them"
    )
    assert resolve_recipe(EMBEDDER, _files("local/odd", "bert", st=odd), "mean").pooling == "mean"
    no_prompt = SentenceTransformerFiles(present=True, pooling="mean", include_prompt=False)
    with pytest.raises(CmtebError) as err:
        resolve_recipe(EMBEDDER, _files("local/np", "bert", st=no_prompt))
    assert str(err.value) == (
        "local/np leaves its prompt out of mean pooling (include_prompt: false), which cmteb does not compute: pass "
        "--no-instruction to run it without prompts, or evaluate it with mteb"
    )
    last = SentenceTransformerFiles(present=True, pooling="lasttoken", include_prompt=False)
    assert resolve_recipe(EMBEDDER, _files("local/np", "qwen3", st=last)).include_prompt is False


def test_a_models_files_are_read_without_torch(tmp_path):
    assert read_model_files("org/m", None) == ModelFiles("org/m", None, (), False, NO_ST, {})
    config = {"model_type": "bert", "architectures": ["BertModel"], "hidden_size": 8}
    (tmp_path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    files = read_model_files("org/m", tmp_path)
    assert files == ModelFiles("org/m", "bert", ("BertModel",), False, NO_ST, config)
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"auto_map": {"AutoTokenizer": "x.Tok"}}), "utf-8")
    assert read_model_files("org/m", tmp_path).remote_code
    (tmp_path / "tokenizer_config.json").unlink()
    (tmp_path / "config.json").write_text(json.dumps({**config, "auto_map": {"AutoModel": "m.M"}}), "utf-8")
    assert read_model_files("org/m", tmp_path).remote_code
    (tmp_path / "config.json").write_text("{", encoding="utf-8")
    with pytest.raises(CmtebError) as err:
        read_model_files("org/m", tmp_path)
    path = tmp_path / "config.json"
    assert str(err.value).startswith(f"{path} is not valid JSON (Expecting property name")
    assert str(err.value).endswith("): fix the file or download it again")


def test_a_models_sentence_transformers_files_are_read_with_it(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}), encoding="utf-8")
    (tmp_path / "modules.json").write_text(
        json.dumps([{"idx": 0, "path": "", "type": "sentence_transformers.models.Transformer"}]), encoding="utf-8"
    )
    files = read_model_files("org/m", tmp_path)
    assert files.st.present and files.st.modules == ("Transformer",)


def test_a_cross_encoder_is_recognised_by_every_architecture_its_config_lists():
    files = _files("local/ce", "bert", ["BertModel", "BertForSequenceClassification"])
    recipe = resolve_recipe(RERANKER, files)
    assert recipe.recognised_by == "config.json architecture BertModel, BertForSequenceClassification with one output"


def test_a_name_is_recognised_whatever_its_case():
    recipe = resolve_recipe(EMBEDDER, _files("baai/BGE-Large-ZH-v1.5", "bert"))
    assert recipe.family == "bge-zh"


def test_a_folder_without_a_config_reads_as_not_downloaded(tmp_path):
    assert read_model_files("org/m", Path(tmp_path)) == ModelFiles("org/m", None, (), False, NO_ST, {})
