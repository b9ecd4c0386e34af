"""The dense BGE encoder core: transformers model, CLS or mean pooling, L2 normalisation.

Texts are tokenised once, sorted by length so each batch pads to its own longest text, and
the embeddings are returned in input order.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cmteb.errors import CmtebError
from cmteb.models.loading import ModelSource, load_config, load_tokenizer, resolve_model

logger = logging.getLogger(__name__)

POOLING_MODES = ("cls", "mean")
PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def pooling_from_sentence_transformers(model_dir: Path | None) -> str | None:
    """The pooling a sentence-transformers model declares in `1_Pooling/config.json`, if any."""
    if model_dir is None:
        return None
    config_file = model_dir / "1_Pooling" / "config.json"
    if not config_file.is_file():
        return None
    config = json.loads(config_file.read_text(encoding="utf-8"))
    if config.get("pooling_mode_cls_token"):
        return "cls"
    if config.get("pooling_mode_mean_tokens"):
        return "mean"
    return None


def pick_device(device: str | None) -> str:
    """`device` as given, or cuda when a GPU is present, else cpu."""
    if device and device != "auto":
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise CmtebError(f"--device {device} asked for a GPU but torch sees none: use --device cpu")
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def pool(last_hidden: torch.Tensor, attention_mask: torch.Tensor, mode: str) -> torch.Tensor:
    """CLS (first token) or attention-masked mean pooling, computed in fp32."""
    hidden = last_hidden.float()
    if mode == "cls":
        return hidden[:, 0]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


@dataclass
class EncodeStats:
    """Counters of the work the encoder did, for the run record and benchmarks."""

    texts: int = 0
    tokens: int = 0
    padded_tokens: int = 0
    batches: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, float]:
        """The counters as a plain dict."""
        return dict(vars(self))


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
    stats: EncodeStats = field(default_factory=EncodeStats)

    @classmethod
    def load(
        cls,
        model: str,
        *,
        pooling: str | None = None,
        max_length: int = 512,
        batch_size: int = 32,
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

        if precision not in PRECISIONS:
            raise CmtebError(f"unknown precision {precision!r}: choose from {', '.join(PRECISIONS)}")
        if pooling is not None and pooling not in POOLING_MODES:
            raise CmtebError(f"unknown pooling {pooling!r}: choose from {', '.join(POOLING_MODES)}")
        if max_length < 1:
            raise CmtebError(f"--max-length must be positive, got {max_length}")
        if batch_size < 1:
            raise CmtebError(f"--batch-size must be positive, got {batch_size}")
        source = resolve_model(model, name=name, revision=revision)
        config = load_config(source, trust_remote_code=trust_remote_code)
        tokenizer = load_tokenizer(source, trust_remote_code=trust_remote_code)
        device = pick_device(device)
        if precision == "fp16" and device == "cpu":
            logger.warning("fp16 on CPU is slow and loses accuracy; bf16 or fp32 are better choices there")
        try:
            net = AutoModel.from_pretrained(
                source.path,
                config=config,
                dtype=PRECISIONS[precision],
                revision=None if source.local_dir else source.revision,
                trust_remote_code=trust_remote_code,
            )
        except (OSError, ValueError) as exc:
            raise CmtebError(f"model {source.name} cannot be loaded as an encoder: {str(exc).splitlines()[0]}") from exc
        if getattr(config, "is_encoder_decoder", False) or not hasattr(net, "embeddings"):
            logger.warning("model %s is not a BERT-style encoder; CLS/mean pooling may not suit it", source.name)
        net.eval().to(device)
        if device == "cuda" and torch.cuda.device_count() > 1:
            # Several GPUs: split every batch across them.
            net = torch.nn.DataParallel(net)
        limit = getattr(config, "max_position_embeddings", None)
        if limit and getattr(config, "model_type", "") in {"xlm-roberta", "roberta"}:
            limit -= 2  # RoBERTa-style position ids start after the padding index
        if limit and max_length > limit:
            max_length = limit
        chosen = pooling or pooling_from_sentence_transformers(source.local_dir) or "cls"
        return cls(net, tokenizer, source, chosen, normalize, max_length, batch_size, precision, device, config)

    @property
    def embedding_dim(self) -> int:
        """Width of the embeddings."""
        return int(self.config.hidden_size)

    def _tokenize(self, texts: Sequence[str]) -> dict[str, list[list[int]]]:
        return self.tokenizer(
            list(texts), padding=False, truncation=True, max_length=self.max_length, return_attention_mask=True
        )

    @torch.inference_mode()
    def encode(
        self,
        texts: Sequence[str],
        *,
        batch_size: int | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Embed `texts`; returns a float32 array `[len(texts), dim]` in input order.

        Texts are sorted longest first so that batches hold texts of similar length and the
        first batch shows at once whether the largest one fits in memory.
        """
        import time

        if len(texts) == 0:
            return np.zeros((0, self.embedding_dim), dtype=np.float32)
        started = time.perf_counter()
        batch_size = batch_size or self.batch_size
        encoded = self._tokenize(texts)
        lengths = np.array([len(ids) for ids in encoded["input_ids"]])
        order = np.argsort(-lengths, kind="stable")
        out = np.empty((len(texts), self.embedding_dim), dtype=np.float32)
        keys = list(encoded.keys())
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            features = {k: [encoded[k][i] for i in idx] for k in keys}
            batch = self.tokenizer.pad(features, padding=True, return_tensors="pt")
            batch = {k: v.to(self.device) for k, v in batch.items()}
            hidden = self.model(**batch).last_hidden_state
            emb = pool(hidden, batch["attention_mask"], self.pooling)
            if self.normalize:
                emb = torch.nn.functional.normalize(emb, p=2, dim=1)
            out[idx] = emb.cpu().numpy()
            self.stats.batches += 1
            self.stats.tokens += int(lengths[idx].sum())
            self.stats.padded_tokens += int(batch["input_ids"].numel())
            if on_batch is not None:
                on_batch(len(idx))
        self.stats.texts += len(texts)
        self.stats.seconds += time.perf_counter() - started
        if not np.isfinite(out).all():
            raise CmtebError(
                f"model {self.source.name} produced NaN or inf embeddings: try --precision fp32 or check the weights"
            )
        return out
