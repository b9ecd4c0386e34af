"""The dense BGE encoder core: transformers model, CLS or mean pooling, L2 normalisation.

Texts are tokenised once, sorted by length so each batch pads to its own longest text, and
the embeddings are returned in input order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from cmteb.errors import CmtebError
from cmteb.models.batching import BatchStats, forward_in_batches
from cmteb.models.loading import ModelSource, load_model, pooling_from_sentence_transformers

POOLING_MODES = ("cls", "mean")


def pool(last_hidden: torch.Tensor, attention_mask: torch.Tensor, mode: str) -> torch.Tensor:
    """CLS (first token) or attention-masked mean pooling, computed in fp32."""
    hidden = last_hidden.float()
    if mode == "cls":
        return hidden[:, 0]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


@dataclass
class BGEEncoder:
    """A transformers encoder with BGE pooling and normalisation.

    Build it with `BGEEncoder.load(...)`; call `encode(texts)` for an `[n, dim]` float32 array.
    """

    model: torch.nn.Module
    tokenizer: Any
    source: ModelSource
    pooling: str = "cls"
    normalize: bool = True
    max_length: int = 512
    batch_size: int = 32
    precision: str = "fp32"
    device: str = "cpu"
    config: Any = None
    batch_tokens: int | None = None
    stats: BatchStats = field(default_factory=BatchStats)

    @classmethod
    def load(
        cls,
        model: str,
        *,
        pooling: str | None = None,
        max_length: int = 512,
        batch_size: int = 32,
        batch_tokens: int | None = None,
        precision: str = "fp32",
        device: str | None = None,
        normalize: bool = True,
        name: str | None = None,
        revision: str | None = None,
        trust_remote_code: bool = False,
    ) -> BGEEncoder:
        """Load a BERT/XLM-R-family encoder from a hub id or a local directory.

        Pooling: `pooling` if given, else what the model's `1_Pooling/config.json` says, else CLS.
        """
        from transformers import AutoModel

        if pooling is not None and pooling not in POOLING_MODES:
            raise CmtebError(f"unknown pooling {pooling!r}: choose from {', '.join(POOLING_MODES)}")
        m = load_model(
            AutoModel,
            model,
            max_length=max_length,
            batch_size=batch_size,
            batch_tokens=batch_tokens,
            precision=precision,
            device=device,
            name=name,
            revision=revision,
            trust_remote_code=trust_remote_code,
        )
        chosen = pooling or pooling_from_sentence_transformers(m.source.local_dir) or "cls"
        return cls(
            m.net,
            m.tokenizer,
            m.source,
            chosen,
            normalize,
            m.max_length,
            batch_size,
            precision,
            m.device,
            m.config,
            batch_tokens,
        )

    @property
    def embedding_dim(self) -> int:
        """Width of the embeddings."""
        return int(self.config.hidden_size)

    @torch.inference_mode()
    def encode(
        self,
        texts: Sequence[str],
        *,
        batch_size: int | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Embed `texts`; returns a float32 array `[len(texts), dim]` in input order."""
        if len(texts) == 0:
            return np.zeros((0, self.embedding_dim), dtype=np.float32)
        started = time.perf_counter()
        encoded = self.tokenizer(list(texts), padding=False, truncation=True, max_length=self.max_length)
        out = np.empty((len(texts), self.embedding_dim), dtype=np.float32)

        def forward(idx: np.ndarray, batch: dict[str, torch.Tensor]) -> None:
            emb = pool(self.model(**batch).last_hidden_state, batch["attention_mask"], self.pooling)
            if self.normalize:
                emb = torch.nn.functional.normalize(emb, p=2, dim=1)
            out[idx] = emb.cpu().numpy()

        forward_in_batches(
            self.tokenizer,
            encoded,
            batch_size or self.batch_size,
            self.device,
            self.stats,
            forward,
            on_batch,
            max_tokens=self.batch_tokens,
        )
        self.stats.texts += len(texts)
        self.stats.seconds += time.perf_counter() - started
        if not np.isfinite(out).all():
            raise CmtebError(
                f"model {self.source.name} produced NaN or inf embeddings: try --precision fp32 or check the weights"
            )
        return out
