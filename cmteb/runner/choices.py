"""The models a run evaluates, resolved to their files and families: `EmbedderChoice`, `RerankerChoice`, and the
settings that follow from them (the max length the model allows, the variant that names the result folder)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cmteb.assets import BUNDLED_MODEL_HUB_ID, BUNDLED_MODEL_NAME, bundled_model_dir
from cmteb.defaults import DEFAULT_CUTOFF_LAYER, DEFAULT_RERANK_TOP_K
from cmteb.errors import CmtebError
from cmteb.models.families import (
    EMBEDDER,
    LAYERWISE,
    RERANKER,
    ModelFiles,
    ModelRecipe,
    read_model_files,
    resolve_recipe,
)
from cmteb.models.instructions import AskedInstructions, TaskInstructions, plan_instructions
from cmteb.models.lexical.settings import LEXICAL_ARGUMENT, LEXICAL_NAME, LexicalSettings
from cmteb.models.loading import position_config, usable_max_length
from cmteb.models.sources import ModelSource, resolve_model
from cmteb.runner.options import RunOptions
from cmteb.tasks.protocols import known_tasks
from cmteb.tasks.registry import TaskSpec


@dataclass(frozen=True)
class EmbedderChoice:
    """The embedding model as the run uses it."""

    source: ModelSource
    recipe: ModelRecipe | None  # how its family runs it (None: the lexical baseline)
    instructions: dict[str, TaskInstructions] = field(default_factory=dict)  # per task name (and mteb's run_as)
    documented: bool = True  # the instructions are the family's own (no --instruction/--instructions/--no-...)
    default_pooling: str | None = None  # with --pooling, what the model's family or files would pool by
    lexical: LexicalSettings | None = None  # the `bm25` baseline: no network, these settings instead

    @property
    def pooling(self) -> str:
        """cls, mean, lasttoken, or none (the lexical baseline)."""
        return self.recipe.pooling if self.recipe is not None else "none"  # type: ignore[return-value]


@dataclass(frozen=True)
class RerankerChoice:
    """The reranker as the run uses it."""

    source: ModelSource
    recipe: ModelRecipe
    normalize: bool  # scores through a sigmoid (rankings unchanged)
    top_k: int  # candidates re-ranked in a two-stage run
    cutoff_layer: int | None = None  # the layerwise reranker's scoring layer


def capped_lengths(asked: RunOptions, source: ModelSource, recipe: ModelRecipe) -> tuple[int, int]:
    """The max length asked for (the family's default when none is), capped at what the model's position
    embeddings allow, and the length the model gets by default (its family's, capped alike)."""
    config = position_config(source, trust_remote_code=asked.trust_remote_code)
    default = usable_max_length(config, recipe.max_length)
    return (default if asked.max_length is None else usable_max_length(config, asked.max_length)), default


def variant_of(asked: RunOptions, embedder: EmbedderChoice | None, max_length: int, default_length: int) -> dict:
    """The settings of a run that change scores and differ from the model's defaults, in a fixed order (they
    name the result folder, the leaderboard row and the model card entry). Precision, device and batching
    move scores by float noise only: the run record keeps them."""
    variant: dict[str, Any] = {}
    if embedder is not None and asked.pooling is not None and embedder.default_pooling != asked.pooling:
        variant["pooling"] = asked.pooling
    if max_length != default_length:
        variant["max_length"] = max_length
    if embedder is not None and not embedder.documented:
        variant["instruction"] = _asked_instructions_tag(asked)
    if asked.subsample is not None:
        variant["subsample"] = asked.subsample
    if asked.subsample_corpus is not None:
        variant["subsample_corpus"] = asked.subsample_corpus
    if asked.reranker is not None and embedder is not None and asked.rerank_top_k != DEFAULT_RERANK_TOP_K:
        variant["top_k"] = asked.rerank_top_k
    return variant


def _asked_instructions_tag(asked: RunOptions) -> str:
    """Names the instructions asked for in a result folder: "none", or a hash of --instruction's text or of the
    --instructions file's content."""
    if asked.no_instruction:
        return "none"
    given = asked.instruction.encode() if asked.instruction is not None else Path(asked.instructions).read_bytes()  # type: ignore[arg-type]
    return hashlib.sha256(given).hexdigest()[:8]


def _lexical(asked: RunOptions) -> EmbedderChoice:
    """The `bm25` baseline, named by its settings' hash; settings of a network are refused."""
    given = [
        f"--{k.replace('_', '-')}"
        for k in ("reranker", "pooling", "instruction", "instructions", "devices", "ray")
        if getattr(asked, k)
    ]
    if given:
        raise CmtebError(f"bm25 is a lexical baseline without a network: drop {', '.join(given)}")
    settings = LexicalSettings()
    source = ModelSource(
        path=LEXICAL_ARGUMENT,
        name=asked.model_name or LEXICAL_NAME,
        revision=asked.revision or settings.fingerprint(),
        local_dir=None,
        named_by="the reserved name bm25",
        revision_is="a hash of its settings: tokenizer, k1, b, n-gram range, width",
    )
    return EmbedderChoice(source, None, lexical=settings)


def _model_source(model: str, asked: RunOptions, name: str | None, revision: str | None) -> ModelSource:
    """`model` (a hub id, a folder, or the bundled model's name) resolved to its files."""
    bundled = model == BUNDLED_MODEL_NAME
    if bundled:
        model, name = str(bundled_model_dir()), name or BUNDLED_MODEL_HUB_ID
    source = resolve_model(model, name=name, revision=revision, memo=asked.fingerprint_memo())
    return replace(source, named_by="the bundled model's hub id") if bundled and not asked.model_name else source


def _refuse_remote_code(files: ModelFiles, asked: RunOptions) -> None:
    """A model that maps its classes to code of its own runs only with --trust-remote-code (never silently on
    the stock class)."""
    if files.remote_code and not asked.trust_remote_code:
        raise CmtebError(
            f"model {files.name} ships its own code (an auto_map in its config): rerun with --trust-remote-code "
            "if you trust it"
        )


def embedder_choice(model: str, asked: RunOptions, specs: Sequence[TaskSpec]) -> EmbedderChoice:
    """The embedding model resolved to its files, its family's recipe, and each task's instructions."""
    if model == LEXICAL_ARGUMENT:
        return _lexical(asked)
    source = _model_source(model, asked, asked.model_name, asked.revision)
    files = read_model_files(source.name, source.local_dir)
    _refuse_remote_code(files, asked)
    recipe = resolve_recipe(EMBEDDER, files, asked.pooling)
    wanted = AskedInstructions(asked.instruction, _path(asked.instructions), asked.no_instruction)
    plan = plan_instructions(
        recipe.instructions,
        (files.st.prompts, files.st.default_prompt_name),
        specs,
        list(known_tasks()),
        wanted,
    )
    default_pooling = None
    if asked.pooling is not None:
        try:
            default_pooling = resolve_recipe(EMBEDDER, files).pooling
        except CmtebError:  # no family covers it: the pooling is the one asked for
            default_pooling = None
    return EmbedderChoice(source, recipe, plan, not wanted.overrides, default_pooling=default_pooling)


def reranker_choice(asked: RunOptions, model: str | None) -> RerankerChoice | None:
    """The reranker resolved to its files and family (named by --model-name/--revision when it runs
    alone)."""
    if asked.reranker is None:
        return None
    name, revision = (asked.model_name, asked.revision) if model is None else (None, None)
    source = resolve_model(asked.reranker, name=name, revision=revision, memo=asked.fingerprint_memo())
    files = read_model_files(source.name, source.local_dir)
    _refuse_remote_code(files, asked)
    recipe = resolve_recipe(RERANKER, files)
    if asked.cutoff_layers is not None and recipe.core != LAYERWISE:
        raise CmtebError(f"--cutoff-layers is for layerwise rerankers; {source.name} is a {recipe.core} reranker")
    cutoff = (asked.cutoff_layers or DEFAULT_CUTOFF_LAYER) if recipe.core == LAYERWISE else None
    return RerankerChoice(source, recipe, asked.normalize_scores, asked.rerank_top_k, cutoff)


def _path(value: Path | str | None) -> Path | None:
    return None if value is None else Path(value)
