"""The model families cmteb evaluates, in one table, and how a model is recognised as one of them.

How a model turns text into a vector (or a query and a passage into a score) is data here, not code paths
keyed on names: per family, how it is recognised, its pooling and normalisation, where its instructions come
from and which inputs get them, its padding side and end-of-sequence token, its default max length and GPU
precision, the core that runs it, and the implementation its scores are checked against.

A model is resolved once, into a `ModelRecipe` the run records and keys its caches on:
1. its sentence-transformers files win (`st_files.py`): pooling, normalisation, dense layers and max length
   are what sentence-transformers would run;
2. a family whose name pattern matches the model's name and whose architecture matches its config.json
   (Qwen3-Embedding, gte-Qwen2, bge-multilingual-gemma2, BGE zh/en, bge-m3, M3E, the BGE rerankers...) gives
   what the files do not say, and its instructions;
3. a folder with sentence-transformers files and no such family is run as sentence-transformers runs it, with
   its own prompts, as mteb's sentence-transformers wrapper does;
4. a cross-encoder (a sequence classifier with one output) is recognised by its architecture;
5. anything else is refused in one line naming the families, unless `--pooling` (and `--instructions`) say
   how to run it: then the record and the summary say the pooling was asked for, not recognised.

Adding a family is one entry below and its test.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from cmteb.errors import CmtebError
from cmteb.models.instructions import InstructionStyle
from cmteb.models.st_files import POOLING_MODES, SentenceTransformerFiles, read_sentence_transformers

EMBEDDER, RERANKER = "embedder", "reranker"
#: Cores: the dense encoder (any pooling, encoders and decoders alike), and the rerankers.
ENCODER, CROSS_ENCODER, YES_LOGIT, YES_NO, LAYERWISE = "encoder", "cross-encoder", "yes-logit", "yes-no", "layerwise"
DECODER_TYPES = ("qwen2", "qwen3", "gemma", "gemma2", "mistral", "llama", "minicpm")
QWEN3_TEMPLATE = "Instruct: {instruction}\nQuery:"  # mteb's Qwen3-Embedding template (qwen3_models.py)
GTE_QWEN2_TEMPLATE = "Instruct: {instruction}\nQuery: "  # mteb's gte-Qwen2 template (gte_models.py)
BGE_LLM_TEMPLATE = "<instruct>{instruction}\n<query>"  # FlagEmbedding's bge-multilingual-gemma2 format


@dataclass(frozen=True)
class Family:
    """One model family (see the module docstring)."""

    name: str
    kind: str  # EMBEDDER or RERANKER
    core: str
    architectures: tuple[str, ...]  # config.json model_type values it covers (empty: any)
    names: str | None = None  # a regex the model's name must match (None: recognised by architecture or files)
    pooling: str | None = None  # cls, mean or lasttoken; None: the model's sentence-transformers files say
    normalize: bool = True
    instructions: InstructionStyle = field(default_factory=lambda: InstructionStyle(None))
    padding_side: str | None = None  # None: the tokenizer's own
    append_eos: bool = False  # end every input with the EOS token when the tokenizer does not
    max_length: int = 512
    gpu_precision: str | None = None  # the precision on a GPU when --precision is not given (None: fp32)
    reference: str = ""  # the implementation cmteb's outputs are checked against


# The BGE encoders differ only in name and query instruction. A template rather than a helper function: the
# table stays data built at import (mutmut cannot switch a mutant of a function called at import).
_BGE = Family("bge", EMBEDDER, ENCODER, ("bert", "xlm-roberta"), None, "cls", True, reference="FlagEmbedding FlagModel")


FAMILIES: tuple[Family, ...] = (
    replace(_BGE, name="bge-noinstruct", names=r"(^|/)bge-[\w.-]*noinstruct"),
    replace(
        _BGE, name="bge-zh", names=r"(^|/)bge-(small|base|large)-zh(-v1\.5)?$", instructions=InstructionStyle("bge-zh")
    ),
    replace(
        _BGE, name="bge-en", names=r"(^|/)bge-(small|base|large)-en(-v1\.5)?$", instructions=InstructionStyle("bge-en")
    ),
    replace(
        _BGE, name="bge-m3", names=r"(^|/)bge-m3$", reference="FlagEmbedding BGEM3FlagModel (dense)", max_length=8192
    ),
    Family(
        "m3e", EMBEDDER, ENCODER, ("bert",), r"(^|/)m3e-", "mean", False, reference="mteb's sentence-transformers path"
    ),
    Family(
        "qwen3-embedding",
        EMBEDDER,
        ENCODER,
        ("qwen3",),
        r"(^|/)Qwen3-Embedding-",
        "lasttoken",
        True,
        InstructionStyle("mteb", QWEN3_TEMPLATE, texts=True),
        padding_side="left",
        max_length=8192,
        reference="mteb's Qwen3-Embedding loader; FlagEmbedding FlagLLMModel",
    ),
    Family(
        "gte-qwen2",
        EMBEDDER,
        ENCODER,
        ("qwen2",),
        r"(^|/)gte-Qwen2-",
        "lasttoken",
        True,
        InstructionStyle("mteb", GTE_QWEN2_TEMPLATE, texts=True),
        append_eos=True,  # mteb loads it with add_eos_token=True
        max_length=8192,
        reference="mteb's gte-Qwen2 loader",
    ),
    Family(
        "bge-multilingual-gemma2",
        EMBEDDER,
        ENCODER,
        ("gemma2",),
        r"(^|/)bge-multilingual-gemma2$",
        "lasttoken",
        True,
        InstructionStyle("flagembedding", BGE_LLM_TEMPLATE, texts=True),
        max_length=8192,
        gpu_precision="bf16",
        reference="FlagEmbedding FlagLLMModel",
    ),
    Family(
        "bge-reranker",
        RERANKER,
        CROSS_ENCODER,
        ("bert", "xlm-roberta", "roberta"),
        r"(^|/)bge-reranker-(base|large|v2-m3)$",
        reference="FlagEmbedding FlagReranker",
    ),
    Family(
        "bge-reranker-gemma",
        RERANKER,
        YES_LOGIT,
        ("gemma", "gemma2"),
        r"(^|/)bge-reranker-v2(\.5)?-gemma",
        padding_side="left",
        gpu_precision="bf16",
        reference="FlagEmbedding FlagLLMReranker",
    ),
    Family(
        "bge-reranker-layerwise",
        RERANKER,
        LAYERWISE,
        ("minicpm",),
        r"(^|/)bge-reranker-v2-minicpm-layerwise",
        padding_side="left",
        gpu_precision="bf16",
        reference="FlagEmbedding LayerWiseFlagLLMReranker",
    ),
    Family(
        "qwen3-reranker",
        RERANKER,
        YES_NO,
        ("qwen3",),
        r"(^|/)Qwen3-Reranker-",
        padding_side="left",
        max_length=8192,
        reference="mteb's Qwen3-Reranker wrapper (QwenLM/Qwen3-Embedding examples/qwen3_reranker_transformers.py)",
    ),
)
#: Recognised by their files or architecture rather than by name.
SENTENCE_TRANSFORMERS = Family(
    "sentence-transformers",
    EMBEDDER,
    ENCODER,
    (),
    instructions=InstructionStyle("sentence-transformers"),
    reference="mteb's sentence-transformers wrapper",
)
CROSS_ENCODERS = Family("cross-encoder", RERANKER, CROSS_ENCODER, (), reference="FlagEmbedding FlagReranker")


@dataclass(frozen=True)
class ModelRecipe:
    """How one model is run, resolved once (what the run record's `model_recipe` holds)."""

    family: str | None  # None: no family covers the model; --pooling said how to run it
    recognised_by: str
    kind: str
    core: str
    pooling: str | None = None
    normalize: bool = True
    dense: tuple[str, ...] = ()  # sentence-transformers Dense modules' folders, run after pooling
    include_prompt: bool = True
    padding_side: str | None = None
    append_eos: bool = False
    max_length: int = 512
    gpu_precision: str | None = None
    instructions: InstructionStyle = field(default_factory=lambda: InstructionStyle(None))
    reference: str = ""
    decoder: bool = False  # a causal language model's network (last-token pooling reads its last state)

    def describe(self) -> str:
        """The recipe in words, for the summary's caption."""
        what = f"family {self.family}" if self.family else "no family"
        parts = [f"{what} ({self.recognised_by})"]
        if self.kind == EMBEDDER:
            parts.append(f"{self.pooling} pooling, {'normalised' if self.normalize else 'not normalised'}")
        return ", ".join(parts)

    def as_record(self) -> dict[str, Any]:
        """The recipe as the run record keeps it."""
        return asdict(self)


@dataclass(frozen=True)
class ModelFiles:
    """What a model's files say of it, read without torch: config.json and the sentence-transformers files."""

    name: str
    model_type: str | None
    architectures: tuple[str, ...]
    remote_code: bool  # config.json (or the tokenizer's config) maps classes to code of the model's own
    st: SentenceTransformerFiles
    config: dict[str, Any]


def read_model_files(name: str, model_dir: Path | None) -> ModelFiles:
    """A model's files (a hub model not downloaded yet has none to read: empty)."""
    config: dict[str, Any] = {}
    tokenizer_config: dict[str, Any] = {}
    if model_dir is not None:
        for target, file in ((config, "config.json"), (tokenizer_config, "tokenizer_config.json")):
            path = model_dir / file
            try:
                target.update(json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {})
            except (OSError, ValueError) as exc:
                raise CmtebError(f"{path} is not valid JSON ({exc}): fix the file or download it again") from exc
    remote = "auto_map" in config or "auto_map" in tokenizer_config
    return ModelFiles(
        name,
        config.get("model_type"),
        tuple(config.get("architectures") or ()),
        remote,
        read_sentence_transformers(model_dir),
        config,
    )


def _architecture_fits(family: Family, files: ModelFiles) -> bool:
    # A hub model not downloaded yet has no config to read: its name alone then decides, and the load checks it.
    return not family.architectures or files.model_type is None or files.model_type in family.architectures


def named_family(kind: str, files: ModelFiles) -> Family | None:
    """The family whose name pattern matches the model's name and whose architecture fits its config."""
    for family in FAMILIES:
        named = family.kind == kind and family.names and re.search(family.names, files.name, re.IGNORECASE)
        if named and _architecture_fits(family, files):
            return family
    return None


def _is_cross_encoder(files: ModelFiles) -> bool:
    """A sequence classifier with one output: what a cross-encoder reranker is, by its config alone."""
    labels = files.config.get("num_labels", len(files.config.get("id2label") or {}) or None)
    return any(a.endswith("ForSequenceClassification") for a in files.architectures) and labels in (None, 1)


def family_names(kind: str) -> str:
    """The families of a kind, for messages."""
    names = [f.name for f in FAMILIES if f.kind == kind]
    extra = SENTENCE_TRANSFORMERS.name if kind == EMBEDDER else CROSS_ENCODERS.name
    return ", ".join([*names, f"any {extra} model"])


def _unrecognised(kind: str, files: ModelFiles) -> CmtebError:
    what = files.model_type or "unknown architecture"
    if kind == RERANKER:
        return CmtebError(
            f"no reranker family covers {files.name} ({what}, {', '.join(files.architectures) or 'no architectures'}): "
            f"cmteb runs {family_names(RERANKER)}"
        )
    return CmtebError(
        f"no model family covers {files.name} ({what}, no sentence-transformers files): cmteb knows "
        f"{family_names(EMBEDDER)}; run it anyway with --pooling cls|mean|lasttoken (and --instructions FILE.json "
        "for per-task instructions)"
    )


def _recognised(kind: str, files: ModelFiles, pooling: str | None) -> tuple[Family, str]:
    """The family a model belongs to and what recognised it."""
    family = named_family(kind, files)
    if family is not None:
        return family, f"its name {files.name} and config.json model_type {files.model_type or 'to be read'}"
    if kind == EMBEDDER and files.st.present:
        return SENTENCE_TRANSFORMERS, "its sentence-transformers files"
    if kind == RERANKER and _is_cross_encoder(files):
        return CROSS_ENCODERS, f"config.json architecture {', '.join(files.architectures)} with one output"
    if kind == EMBEDDER and pooling is not None:
        return Family("none", EMBEDDER, ENCODER, (), pooling=pooling), f"--pooling {pooling}: no family covers it"
    raise _unrecognised(kind, files)


def resolve_recipe(kind: str, files: ModelFiles, pooling: str | None = None) -> ModelRecipe:
    """How to run the model `files` describe (see the module docstring); `pooling`: --pooling, which wins."""
    family, why = _recognised(kind, files, pooling)
    recipe = ModelRecipe(
        None if family.name == "none" else family.name,
        why,
        kind,
        family.core,
        family.pooling,
        family.normalize,
        padding_side=family.padding_side,
        append_eos=family.append_eos,
        max_length=family.max_length,
        gpu_precision=family.gpu_precision,
        instructions=family.instructions,
        reference=family.reference,
        decoder=files.model_type in DECODER_TYPES or any(a.endswith("ForCausalLM") for a in files.architectures),
    )
    if kind == EMBEDDER and files.st.present:
        st = files.st
        recipe = replace(
            recipe,
            recognised_by=why if family is SENTENCE_TRANSFORMERS else f"{why}, with its sentence-transformers files",
            pooling=st.pooling or recipe.pooling,
            normalize=st.normalize,
            dense=st.dense,
            include_prompt=st.include_prompt,
            max_length=st.max_seq_length or recipe.max_length,
        )
    if pooling is not None:
        recipe = replace(recipe, pooling=pooling)
    return _checked(recipe, files)


def _checked(recipe: ModelRecipe, files: ModelFiles) -> ModelRecipe:
    """Refuse what cmteb cannot run as the model's own code would."""
    if recipe.kind == EMBEDDER and recipe.pooling not in POOLING_MODES:
        raise CmtebError(
            f"{files.name} pools by {recipe.pooling!r} (its sentence-transformers Pooling config): cmteb computes "
            f"{', '.join(POOLING_MODES)}; pass --pooling to run it with one of them"
        )
    if recipe.kind == EMBEDDER and not recipe.include_prompt and recipe.pooling != "lasttoken":
        raise CmtebError(
            f"{files.name} leaves its prompt out of {recipe.pooling} pooling (include_prompt: false), which cmteb does "
            "not compute: pass --no-instruction to run it without prompts, or evaluate it with mteb"
        )
    return recipe
