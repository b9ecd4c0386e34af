"""What the two model cores share: how they are loaded (`LoadOptions`), their transformers objects,
and one timed loop over length-sorted batches that counts the work and refuses NaN or inf."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from cmteb.errors import CmtebError
from cmteb.models.batching import BatchStats, forward_in_batches
from cmteb.models.loading import HARMLESS_BUFFERS, ModelSource, load_model, resolve_model
from cmteb.models.options import LoadOptions


@dataclass
class ModelCore:
    """A loaded transformers network and tokenizer, with where it came from and how it batches."""

    model: torch.nn.Module
    tokenizer: Any
    source: ModelSource
    config: Any
    options: LoadOptions
    max_length: int  # the options' max length, capped at what the model allows
    device: str
    weights: dict[str, list[str]] = field(default_factory=dict)  # checkpoint weights that did not match
    stats: BatchStats = field(default_factory=BatchStats)
    pool: Any = None  # a WorkerPool computing the outputs in other processes, or None: here
    KIND: ClassVar[str] = "model"  # how messages name it
    OUTPUTS: ClassVar[str] = "outputs"  # what it computes, as messages name it

    @property
    def batch_size(self) -> int:
        """Inputs per forward pass."""
        return self.options.batch_size

    @property
    def precision(self) -> str:
        """fp32, fp16 or bf16."""
        return self.options.precision

    @classmethod
    def _load(
        cls,
        auto_class: Any,
        model: str | ModelSource,
        options: LoadOptions,
        *,
        name: str | None = None,
        revision: str | None = None,
        check_config: Callable[[Any, ModelSource], None] | None = None,
        harmless: re.Pattern[str] = HARMLESS_BUFFERS,
        **extra: Any,
    ) -> Any:
        """Load `model` (a hub id, a folder, or an already resolved source) with `auto_class`."""
        source = model if isinstance(model, ModelSource) else resolve_model(model, name=name, revision=revision)
        m = load_model(auto_class, source, options, check_config=check_config, harmless=harmless)
        return cls(
            model=m.net,
            tokenizer=m.tokenizer,
            source=m.source,
            config=m.config,
            options=options,
            max_length=m.max_length,
            device=m.device,
            weights=m.weights,
            **extra,
        )

    def empty_outputs(self, count: int) -> np.ndarray:
        """An array for the outputs of `count` inputs."""
        raise NotImplementedError

    def batch_step(self, out: np.ndarray) -> tuple[Callable[..., None], Callable[[], None] | None]:
        """`forward(indices, batch)` that writes a batch's outputs for `out`, and the `gather` that completes
        `out` afterwards (None when `forward` writes it directly)."""
        raise NotImplementedError

    @torch.inference_mode()
    def run_local(
        self,
        encoded: Mapping[str, Sequence[Sequence[int]]],
        *,
        batch_size: int | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """The outputs of tokenised inputs, computed in this process."""
        out = self.empty_outputs(len(encoded["input_ids"]))
        forward, gather = self.batch_step(out)
        return self.run_batches(encoded, out, forward, batch_size=batch_size, on_batch=on_batch, gather=gather)

    def compute(
        self,
        encoded: Mapping[str, Sequence[Sequence[int]]],
        *,
        batch_size: int | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """The outputs of tokenised inputs, in input order: by the worker pool when there is one."""
        if self.pool is None:
            return self.run_local(encoded, batch_size=batch_size, on_batch=on_batch)
        out = self.pool.run(dict(encoded), self.empty_outputs(len(encoded["input_ids"])), self.stats, on_batch)
        return self.checked(out)

    def checked(self, out: np.ndarray) -> np.ndarray:
        """`out`, counted as done, once it is known to hold no NaN or inf."""
        self.stats.texts += len(out)
        if not np.isfinite(out).all():
            raise CmtebError(
                f"{self.KIND} {self.source.name} produced NaN or inf {self.OUTPUTS}: try --precision fp32 or check "
                "the weights"
            )
        return out

    def run_batches(
        self,
        encoded: Mapping[str, Sequence[Sequence[int]]],
        out: np.ndarray,
        forward: Callable[[np.ndarray, dict[str, torch.Tensor]], None],
        *,
        batch_size: int | None = None,
        on_batch: Callable[[int], None] | None = None,
        gather: Callable[[], None] | None = None,
    ) -> np.ndarray:
        """Run `forward` over length-sorted batches of `encoded` filling `out` (`gather` completes it when
        `forward` keeps results on the device); time and count it; refuse NaN."""
        started = time.perf_counter()
        forward_in_batches(
            self.tokenizer,
            encoded,
            batch_size or self.batch_size,
            self.device,
            self.stats,
            forward,
            on_batch,
            max_tokens=self.options.batch_tokens,
        )
        if gather is not None:
            gather()
        self.stats.seconds += time.perf_counter() - started
        return self.checked(out)
