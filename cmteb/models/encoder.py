"""The dense encoder core: a transformers network, pooled and normalised as its family's recipe says.

One core runs every embedding family (`families.py`): BERT and XLM-R encoders with CLS or mean pooling, and
decoders (Qwen2/3, Gemma2, Mistral, Llama) with last-token pooling, left- or right-padded, their inputs ended
with the EOS token where the family asks and the tokenizer does not. Pooling reads the attention mask, so the
last token is found whichever side the batch is padded on; a model's sentence-transformers Dense layers run
after pooling; everything after the network is computed in fp32.

Texts are tokenised once, sorted by length so each batch pads to its own longest text, and the embeddings
are returned in input order. With CLS pooling on a CPU the last layer of a BERT-family encoder is computed for
the first token alone (`first_token.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from cmteb.errors import CmtebError
from cmteb.models.batching import BatchStats
from cmteb.models.core import LoadOptions, ModelCore
from cmteb.models.dense import DenseLayer, load_dense
from cmteb.models.families import EMBEDDER, ModelRecipe, read_model_files, resolve_recipe
from cmteb.models.loading import HARMLESS_FOR_EMBEDDINGS
from cmteb.models.sources import ModelSource, resolve_model
from cmteb.models.speed.first_token import compute_first_token_only, pays_on
from cmteb.models.st_files import POOLING_MODES
from cmteb.models.tokenize import tokenize


def pool(last_hidden: torch.Tensor, attention_mask: torch.Tensor | None, mode: str) -> torch.Tensor:
    """CLS (first token), attention-masked mean, or last-token pooling, in fp32 (no mask: no padding).

    The last token is the mask's last 1 in each row, as sentence-transformers finds it: right padding puts it
    at the row's length, left padding at the end."""
    hidden = last_hidden.float()
    if mode == "cls":
        return hidden[:, 0]
    if mode == "lasttoken":
        if attention_mask is None:
            return hidden[:, -1]
        last = attention_mask.shape[1] - 1 - attention_mask.flip(1).argmax(dim=1)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    if attention_mask is None:
        attention_mask = torch.ones(hidden.shape[:2], device=hidden.device)  # the same sums as a mask of ones
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


@dataclass
class BGEEncoder(ModelCore):
    """A transformers network with its family's pooling, dense layers and normalisation.

    Build it with `BGEEncoder.load(...)`; call `encode(texts)` for an `[n, dim]` float32 array.
    """

    recipe: ModelRecipe | None = None
    dense: list[DenseLayer] = field(default_factory=list)
    eos_id: int | None = None  # appended to every input (the family asks for it and the tokenizer does not add it)
    OUTPUTS: ClassVar[str] = "embeddings"

    @property
    def pooling(self) -> str:
        """cls, mean or lasttoken."""
        return self.recipe.pooling  # type: ignore[union-attr,return-value]

    @property
    def normalize(self) -> bool:
        """Whether embeddings are L2-normalised."""
        return self.recipe.normalize  # type: ignore[union-attr]

    @classmethod
    def load(
        cls,
        model: str | ModelSource,
        *,
        recipe: ModelRecipe | None = None,
        pooling: str | None = None,
        name: str | None = None,
        revision: str | None = None,
        **options: Any,
    ) -> BGEEncoder:
        """Load an embedding model from a hub id, a local directory or a resolved source.

        `recipe` says how to run it; without one it is resolved from the model's files and name (`pooling`, as
        --pooling, wins there). `options` are `LoadOptions` fields (max_length, batch_size, batch_tokens,
        precision, device, trust_remote_code).
        """
        from transformers import AutoModel

        if pooling is not None and pooling not in POOLING_MODES:
            raise CmtebError(f"unknown pooling {pooling!r}: choose from {', '.join(POOLING_MODES)}")
        source = model if isinstance(model, ModelSource) else resolve_model(model, name=name, revision=revision)
        if recipe is None:
            recipe = resolve_recipe(EMBEDDER, read_model_files(source.name, source.local_dir), pooling)
        core = cls._load(
            AutoModel,
            source,
            LoadOptions(**options),
            harmless=HARMLESS_FOR_EMBEDDINGS,  # the pooler and heads never reach an embedding
            decoder=recipe.decoder,
            recipe=recipe,
        )
        core.prepare_inputs()
        core.dense = [load_dense(source, folder, core.device) for folder in recipe.dense]
        if recipe.decoder:
            core.model.config.use_cache = False  # an encoding pass never reads a key/value cache
        if recipe.pooling == "cls" and pays_on(core.device):
            compute_first_token_only(core.model)  # only the first row of the last layer is ever read
        return core

    def prepare_inputs(self) -> None:
        """Set the padding side and the end-of-sequence token the recipe asks for."""
        recipe = self.recipe
        if recipe.padding_side is not None:  # type: ignore[union-attr]
            self.tokenizer.padding_side = recipe.padding_side  # type: ignore[union-attr]
        if self.tokenizer.pad_token_id is None:  # decoders often ship without a pad token: any id, masked out
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if recipe.append_eos and not _adds_eos(self.tokenizer):  # type: ignore[union-attr]
            self.eos_id = self.tokenizer.eos_token_id

    @property
    def embedding_dim(self) -> int:
        """Width of the embeddings."""
        return self.dense[-1].out_features if self.dense else int(self.config.hidden_size)

    def empty_outputs(self, count: int) -> np.ndarray:
        """An array for `count` embeddings."""
        return np.empty((count, self.embedding_dim), dtype=np.float32)

    def encode(
        self,
        texts: Sequence[str],
        *,
        batch_size: int | None = None,
        on_batch: Callable[[int], None] | None = None,
        stats: BatchStats | None = None,
        log: Any = None,
        tokens: Mapping[str, Sequence[Sequence[int]]] | None = None,
    ) -> np.ndarray:
        """Embed `texts`; returns a float32 array `[len(texts), dim]` in input order. The work is counted in
        `stats` and a worker pool's shards in `log`, else in the core's and the pool's own (see `compute`).
        `tokens`: the texts' `tokenize(texts)` when already made."""
        if len(texts) == 0:
            return self.empty_outputs(0)
        encoded = self.tokenize(texts) if tokens is None else tokens
        return self.compute(encoded, batch_size=batch_size, on_batch=on_batch, stats=stats, log=log)

    def tokenize(self, texts: Sequence[str]) -> dict[str, list[list[int]]]:
        """The unpadded ids of `texts`, truncated to the core's max length (the EOS the recipe appends
        included)."""
        if self.eos_id is None:
            return tokenize(self.tokenizer, texts, self.max_length)
        encoded = tokenize(self.tokenizer, texts, self.max_length - 1)
        return {"input_ids": [[*ids, self.eos_id] for ids in encoded["input_ids"]]}

    def head(self, output: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """One padded batch's embeddings from its last hidden states: pooled, through the dense layers, and
        normalised, in fp32."""
        emb = pool(output, batch.get("attention_mask"), self.pooling)
        for layer in self.dense:
            emb = layer(emb)
        return torch.nn.functional.normalize(emb, p=2, dim=1) if self.normalize else emb


def _adds_eos(tokenizer: Any) -> bool:
    """Whether the tokenizer ends an input with its EOS token by itself (Qwen3-Embedding's post-processor does)."""
    eos = getattr(tokenizer, "eos_token_id", None)
    return eos is not None and tokenizer("a")["input_ids"][-1:] == [eos]
