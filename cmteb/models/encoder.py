"""The dense BGE encoder core: transformers model, CLS or mean pooling, L2 normalisation.

Texts are tokenised once, sorted by length so each batch pads to its own longest text, and
the embeddings are returned in input order. With CLS pooling on a CPU the last layer is computed for the
first token alone (`first_token.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from cmteb.errors import CmtebError
from cmteb.models.batching import BatchStats
from cmteb.models.core import LoadOptions, ModelCore
from cmteb.models.first_token import compute_first_token_only, pays_on
from cmteb.models.loading import HARMLESS_FOR_EMBEDDINGS, ModelSource, pooling_from_sentence_transformers
from cmteb.models.tokenize import tokenize

POOLING_MODES = ("cls", "mean")


def pool(last_hidden: torch.Tensor, attention_mask: torch.Tensor | None, mode: str) -> torch.Tensor:
    """CLS (first token) or attention-masked mean pooling, computed in fp32 (no mask: no padding)."""
    hidden = last_hidden.float()
    if mode == "cls":
        return hidden[:, 0]
    if attention_mask is None:
        attention_mask = torch.ones(hidden.shape[:2], device=hidden.device)  # the same sums as a mask of ones
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


@dataclass
class BGEEncoder(ModelCore):
    """A transformers encoder with BGE pooling and normalisation.

    Build it with `BGEEncoder.load(...)`; call `encode(texts)` for an `[n, dim]` float32 array.
    """

    pooling: str = "cls"
    normalize: bool = True
    OUTPUTS: ClassVar[str] = "embeddings"

    @classmethod
    def load(
        cls,
        model: str | ModelSource,
        *,
        pooling: str | None = None,
        normalize: bool = True,
        name: str | None = None,
        revision: str | None = None,
        **options: Any,
    ) -> BGEEncoder:
        """Load a BERT/XLM-R-family encoder from a hub id, a local directory or a resolved source.

        `options` are `LoadOptions` fields (max_length, batch_size, batch_tokens, precision, device,
        trust_remote_code). Pooling: `pooling` if given, else what the model's
        `1_Pooling/config.json` says, else CLS.
        """
        from transformers import AutoModel

        if pooling is not None and pooling not in POOLING_MODES:
            raise CmtebError(f"unknown pooling {pooling!r}: choose from {', '.join(POOLING_MODES)}")
        core = cls._load(
            AutoModel,
            model,
            LoadOptions(**options),
            name=name,
            revision=revision,
            harmless=HARMLESS_FOR_EMBEDDINGS,  # the pooler and heads never reach an embedding
            normalize=normalize,
        )
        core.pooling = pooling or pooling_from_sentence_transformers(core.source.local_dir) or "cls"
        if core.pooling == "cls" and pays_on(core.device):
            compute_first_token_only(core.model)  # only the first row of the last layer is ever read
        return core

    @property
    def embedding_dim(self) -> int:
        """Width of the embeddings."""
        return int(self.config.hidden_size)

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
        """The unpadded ids of `texts`, truncated to the core's max length."""
        return tokenize(self.tokenizer, texts, self.max_length)

    def head(self, output: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """One padded batch's embeddings from its last hidden states, pooled (and normalised) in fp32."""
        emb = pool(output, batch.get("attention_mask"), self.pooling)
        return torch.nn.functional.normalize(emb, p=2, dim=1) if self.normalize else emb
