"""The cross-encoder reranker core: a query and a passage go in together, one relevance score
comes out (the raw logit, optionally through a sigmoid), as FlagEmbedding's rerankers compute it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from cmteb.errors import CmtebError
from cmteb.models.core import LoadOptions, PairScorer
from cmteb.models.families import CROSS_ENCODER, RERANKER, ModelRecipe, read_model_files, resolve_recipe
from cmteb.models.sources import ModelSource, resolve_model
from cmteb.models.speed.first_token import compute_first_token_only, pays_on
from cmteb.models.tokenize import tokenize


def _one_output(config: Any, source: ModelSource) -> None:
    if getattr(config, "num_labels", 1) != 1:
        raise CmtebError(
            f"reranker {source.name} has {config.num_labels} output labels, a cross-encoder reranker has one: "
            "pass a reranker such as BAAI/bge-reranker-base"
        )


# Score heads that read the first token alone of the last layer, which is then computed for that token only.
FIRST_TOKEN_HEADS = (
    "BertForSequenceClassification",  # the pooler: dense + tanh of the first token
    "XLMRobertaForSequenceClassification",  # bge-reranker-base/large: the head reads features[:, 0]
    "RobertaForSequenceClassification",
)


@dataclass
class BGEReranker(PairScorer):
    """A transformers sequence-classification model scoring (query, passage) pairs.

    Build it with `BGEReranker.load(...)`; `score(pairs)` returns one float32 score per pair.
    """

    recipe: ModelRecipe | None = None

    @classmethod
    def load(
        cls,
        model: str | ModelSource,
        *,
        normalize: bool = False,
        recipe: ModelRecipe | None = None,
        name: str | None = None,
        revision: str | None = None,
        **options: Any,
    ) -> BGEReranker:
        """Load a cross-encoder (AutoModelForSequenceClassification with one output) from a hub id or directory.

        `options` are `LoadOptions` fields. `normalize=True` maps scores through a sigmoid to (0, 1);
        rankings are unchanged. Without `recipe`, the model's family is resolved from its files.
        """
        from transformers import AutoModelForSequenceClassification

        source = model if isinstance(model, ModelSource) else resolve_model(model, name=name, revision=revision)
        core = cls._load(
            AutoModelForSequenceClassification,
            source,
            LoadOptions(**options),
            check_config=_one_output,
            normalize=normalize,
            recipe=recipe or resolve_recipe(RERANKER, read_model_files(source.name, source.local_dir)),
        )
        if type(core.model).__name__ in FIRST_TOKEN_HEADS and pays_on(core.device):
            compute_first_token_only(core.model.base_model)
        return core

    def pair_inputs(self, pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
        """Query and passage tokenised together, truncated as transformers' pair truncation does."""
        return tokenize(self.tokenizer, [q for q, _ in pairs], self.max_length, [p for _, p in pairs])

    def head(self, output: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """One padded batch's scores from its logits, in fp32 (fp16 logits tie nearby scores)."""
        logits = output.view(-1).float()
        return torch.sigmoid(logits) if self.normalize else logits


def load_reranker(
    source: ModelSource, *, recipe: ModelRecipe, normalize: bool = False, cutoff: int | None = None, **options: Any
) -> Any:
    """The reranker core `recipe` names: a cross-encoder, or a decoder reranker (`llm_reranker.py`)."""
    if recipe.core == CROSS_ENCODER:
        return BGEReranker.load(source, normalize=normalize, recipe=recipe, **options)
    from cmteb.models.llm_reranker import LLMReranker

    return LLMReranker.load(source, recipe=recipe, normalize=normalize, cutoff_layer=cutoff, **options)
