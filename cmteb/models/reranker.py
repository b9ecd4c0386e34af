"""The cross-encoder reranker core: a query and a passage go in together, one relevance score
comes out (the raw logit, optionally through a sigmoid), as FlagEmbedding's rerankers compute it."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from cmteb.errors import CmtebError
from cmteb.models.batching import BatchStats, forward_in_batches
from cmteb.models.loading import ModelSource, load_model


def _one_output(config: Any, source: ModelSource) -> None:
    if getattr(config, "num_labels", 1) != 1:
        raise CmtebError(
            f"reranker {source.name} has {config.num_labels} output labels, a cross-encoder reranker has one: "
            "pass a reranker such as BAAI/bge-reranker-base"
        )


@dataclass
class BGEReranker:
    """A transformers sequence-classification model scoring (query, passage) pairs.

    Build it with `BGEReranker.load(...)`; `score(pairs)` returns one float32 score per pair.
    """

    model: torch.nn.Module
    tokenizer: Any
    source: ModelSource
    max_length: int = 512
    batch_size: int = 32
    precision: str = "fp32"
    device: str = "cpu"
    normalize: bool = False
    config: Any = None
    batch_tokens: int | None = None
    stats: BatchStats = field(default_factory=BatchStats)

    @classmethod
    def load(
        cls,
        model: str,
        *,
        max_length: int = 512,
        batch_size: int = 32,
        batch_tokens: int | None = None,
        precision: str = "fp32",
        device: str | None = None,
        normalize: bool = False,
        name: str | None = None,
        revision: str | None = None,
        trust_remote_code: bool = False,
    ) -> BGEReranker:
        """Load a cross-encoder (AutoModelForSequenceClassification with one output) from a hub id or directory.

        `normalize=True` maps scores through a sigmoid to (0, 1); rankings are unchanged.
        """
        from transformers import AutoModelForSequenceClassification

        m = load_model(
            AutoModelForSequenceClassification,
            model,
            max_length=max_length,
            batch_size=batch_size,
            batch_tokens=batch_tokens,
            precision=precision,
            device=device,
            name=name,
            revision=revision,
            trust_remote_code=trust_remote_code,
            check_config=_one_output,
        )
        return cls(
            m.net,
            m.tokenizer,
            m.source,
            m.max_length,
            batch_size,
            precision,
            m.device,
            normalize,
            m.config,
            batch_tokens,
        )

    @torch.inference_mode()
    def score(
        self,
        pairs: Sequence[tuple[str, str]],
        *,
        batch_size: int | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Score `[query, passage]` pairs; float32 scores in input order."""
        if len(pairs) == 0:
            return np.zeros(0, dtype=np.float32)
        started = time.perf_counter()
        queries = [q for q, _ in pairs]
        passages = [p for _, p in pairs]
        encoded = self.tokenizer(queries, passages, padding=False, truncation=True, max_length=self.max_length)
        out = np.empty(len(pairs), dtype=np.float32)

        def forward(idx: np.ndarray, batch: dict[str, torch.Tensor]) -> None:
            # The score head's output in fp32: fp16 logits tie nearby scores.
            logits = self.model(**batch).logits.view(-1).float()
            out[idx] = (torch.sigmoid(logits) if self.normalize else logits).cpu().numpy()

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
        self.stats.texts += len(pairs)
        self.stats.seconds += time.perf_counter() - started
        if not np.isfinite(out).all():
            raise CmtebError(f"reranker {self.source.name} produced NaN or inf scores: try --precision fp32")
        return out
