"""The dense BGE encoder core: transformers model, CLS or mean pooling, L2 normalisation.

Texts are tokenised once, sorted by length so each batch pads to its own longest text, and
the embeddings are returned in input order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from cmteb.errors import CmtebError
from cmteb.models.core import LoadOptions, ModelCore
from cmteb.models.loading import HARMLESS_FOR_EMBEDDINGS, ModelSource, pooling_from_sentence_transformers

POOLING_MODES = ("cls", "mean")


def pool(last_hidden: torch.Tensor, attention_mask: torch.Tensor, mode: str) -> torch.Tensor:
    """CLS (first token) or attention-masked mean pooling, computed in fp32."""
    hidden = last_hidden.float()
    if mode == "cls":
        return hidden[:, 0]
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
    ) -> np.ndarray:
        """Embed `texts`; returns a float32 array `[len(texts), dim]` in input order."""
        if len(texts) == 0:
            return self.empty_outputs(0)
        encoded = self.tokenizer(list(texts), padding=False, truncation=True, max_length=self.max_length)
        return self.compute(encoded, batch_size=batch_size, on_batch=on_batch)

    def batch_step(self, out: np.ndarray) -> tuple[Callable[..., None], Callable[[], None]]:
        """Pooled, normalised embeddings of each batch, kept on the device until the last batch: one copy
        to the host, not a sync per batch."""
        on_device = torch.from_numpy(out) if self.device == "cpu" else torch.empty(out.shape, device=self.device)

        def forward(idx: np.ndarray, batch: dict[str, torch.Tensor]) -> None:
            emb = pool(self.model(**batch).last_hidden_state, batch["attention_mask"], self.pooling)
            if self.normalize:
                emb = torch.nn.functional.normalize(emb, p=2, dim=1)
            on_device[torch.as_tensor(idx, device=on_device.device)] = emb

        def gather() -> None:
            if on_device.data_ptr() != out.ctypes.data:
                out[:] = on_device.cpu().numpy()

        return forward, gather
