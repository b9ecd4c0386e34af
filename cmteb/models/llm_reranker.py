"""Decoder rerankers: a causal language model reads the query and the passage in its prompt, and the score is
its logit of an answer token at the last position, as each family's authors compute it.

- `yes-logit` (bge-reranker-v2-gemma, FlagEmbedding's FlagLLMReranker): `[BOS] "A: " query`, then
  `"\\n" "B: " passage` (the passage cut so the pair fits `max_length` plus the prompt), then `"\\n"` and the
  prompt "Given a query A and a passage B, determine whether the passage contains an answer to the query by
  providing a prediction of either 'Yes' or 'No'."; the query is cut at 3/4 of `max_length`. Score: the
  logit of the token "Yes" (through a sigmoid with `--normalize-scores`).
- `yes-no` (Qwen3-Reranker, as mteb's wrapper and the authors' example compute it): a chat-formatted prompt
  around `<Instruct>: ...\\n<Query>: ...\\n<Document>: ...`; score: P("yes") of the two tokens "no" and "yes".
- `layerwise` (bge-reranker-v2-minicpm-layerwise, FlagEmbedding's LayerWiseFlagLLMReranker): the yes-logit
  input, scored by the head of one layer (`--cutoff-layers`, default 28) of the model's own code.

Batches are padded on the left, so the last position is every input's last token, and only that position's
logits are computed (`logits_to_keep`): a whole vocabulary per token would not fit for long passages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from cmteb.defaults import DEFAULT_CUTOFF_LAYER
from cmteb.errors import CmtebError
from cmteb.models.core import LoadOptions, PairScorer
from cmteb.models.families import LAYERWISE, YES_LOGIT, YES_NO, ModelRecipe
from cmteb.models.sources import ModelSource

YES_LOGIT_PROMPT = (
    "Given a query A and a passage B, determine whether the passage contains an answer to the query by providing a "
    "prediction of either 'Yes' or 'No'."
)
QWEN3_PREFIX = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct "
    'provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n'
)
QWEN3_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
QWEN3_INSTRUCTION = "Given the user query, retrieval the relevant passages"


def _ids(tokenizer: Any, text: str, max_length: int | None = None) -> list[int]:
    truncation = {"truncation": True, "max_length": max_length} if max_length is not None else {}
    return list(tokenizer(text, add_special_tokens=False, **truncation)["input_ids"])


def _only_second(first: list[int], second: list[int], max_length: int) -> list[int]:
    """`second` cut at its end so the pair fits `max_length` (the first is never cut: a second shorter than
    the excess is kept whole, as the tokenizers' legacy `only_second` truncation did)."""
    excess = len(first) + len(second) - max_length
    return second if excess <= 0 or len(second) <= excess else second[:-excess]


@dataclass
class LLMReranker(PairScorer):
    """A decoder reranker (see the module docstring); `score(pairs)` gives one float32 score per pair."""

    recipe: ModelRecipe | None = None
    answer_ids: tuple[int, ...] = ()  # ("Yes",) or ("no", "yes") token ids
    cutoff_layer: int | None = None

    @classmethod
    def load(
        cls,
        source: ModelSource,
        *,
        recipe: ModelRecipe,
        normalize: bool = False,
        cutoff_layer: int | None = None,
        **options: Any,
    ) -> LLMReranker:
        """Load a decoder reranker of `recipe`'s core; `options` are `LoadOptions` fields."""
        from transformers import AutoModelForCausalLM

        core = cls._load(
            AutoModelForCausalLM, source, LoadOptions(**options), decoder=True, recipe=recipe, normalize=normalize
        )
        core.tokenizer.padding_side = "left"
        if core.tokenizer.pad_token_id is None:
            core.tokenizer.pad_token = core.tokenizer.eos_token
        core.model.config.use_cache = False
        if recipe.core == YES_NO:
            core.answer_ids = tuple(core.tokenizer.convert_tokens_to_ids(t) for t in ("no", "yes"))
        else:
            core.answer_ids = (_ids(core.tokenizer, "Yes")[0],)
        if recipe.core == LAYERWISE:
            core.cutoff_layer = cutoff_layer or DEFAULT_CUTOFF_LAYER
        return core

    def pair_inputs(self, pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
        """Each pair's prompt ids, built as the family's authors build them."""
        build = self._qwen3_ids if self.recipe.core == YES_NO else self._yes_logit_ids  # type: ignore[union-attr]
        return {"input_ids": [build(q, p) for q, p in pairs]}

    def _yes_logit_ids(self, query: str, passage: str) -> list[int]:
        """FlagLLMReranker's input for one pair."""
        tok, length = self.tokenizer, self.max_length
        sep, prompt = _ids(tok, "\n"), _ids(tok, YES_LOGIT_PROMPT)
        first = _ids(tok, "A: " + query, length * 3 // 4)
        if tok.bos_token_id is not None and tok.bos_token_id != tok.pad_token_id:
            first = [tok.bos_token_id, *first]
        second = _only_second(first, sep + _ids(tok, "B: " + passage, length), length + len(sep) + len(prompt))
        return first + second + sep + prompt

    def _qwen3_ids(self, query: str, passage: str) -> list[int]:
        """The Qwen3-Reranker input for one pair (mteb's wrapper: the pair text through the tokenizer's own
        call, cut to what the prefix and suffix leave)."""
        tok = self.tokenizer
        prefix, suffix = _ids(tok, QWEN3_PREFIX), _ids(tok, QWEN3_SUFFIX)
        text = f"<Instruct>: {QWEN3_INSTRUCTION}\n<Query>: {query}\n<Document>: {passage}"
        body = tok(text, truncation="longest_first", max_length=self.max_length - len(prefix) - len(suffix))
        return prefix + list(body["input_ids"]) + suffix

    def network(self, batch: dict[str, torch.Tensor]) -> Any:
        """The logits of the last position (per cut-off layer for the layerwise model)."""
        if self.cutoff_layer is not None:
            return self.model(**batch, cutoff_layers=[self.cutoff_layer]).logits
        return self.model(**batch, logits_to_keep=1).logits

    def head(self, output: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """One batch's scores from the last position's logits, in fp32."""
        if self.cutoff_layer is not None:
            last = output[0][:, -1].float().reshape(len(output[0]), -1)
            scores = last[:, 0]
        else:
            last = output[:, -1].float()
            if self.recipe.core == YES_NO:  # type: ignore[union-attr]
                pair = last[:, list(self.answer_ids)]
                return torch.nn.functional.log_softmax(pair, dim=1)[:, 1].exp()
            scores = last[:, self.answer_ids[0]]
        return torch.sigmoid(scores) if self.normalize else scores


def check_reranker_core(recipe: ModelRecipe) -> None:
    """Refuse a recipe this module does not run."""
    if recipe.core not in (YES_LOGIT, YES_NO, LAYERWISE):
        raise CmtebError(f"no decoder reranker core {recipe.core!r}")
