"""What the two model cores share: how they are loaded (`LoadOptions`), their transformers objects,
and one timed loop over length-sorted batches that counts the work and refuses NaN or inf."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from cmteb.errors import CmtebError
from cmteb.models.batching import BatchStats, forward_in_batches
from cmteb.models.loading import HARMLESS_BUFFERS, load_model
from cmteb.models.options import LoadOptions
from cmteb.models.sources import ModelSource, resolve_model
from cmteb.models.speed.masks import network_inputs, takes_prepared_mask
from cmteb.models.speed.streams import default_streams, parallel_passes
from cmteb.models.speed.traced import TracedPass, traced_pass

logger = logging.getLogger(__name__)


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
    streams: int = 1  # forward passes at once in this process (on a CPU, one core each)
    warned_cpu_fp16: bool = False  # the fp16-on-CPU warning is said once per core
    prepared_masks: bool = False  # the network takes the host-decided attention mask (`masks.py`)
    traced: TracedPass | None = None  # passes run as a checked trace (`traced.py`), else eagerly
    KIND: ClassVar[str] = "model"  # how messages name it
    OUTPUTS: ClassVar[str] = "outputs"  # what it computes, as messages name it
    OUTPUT_FIELD: ClassVar[str] = "last_hidden_state"  # the field of the network's output it reads

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
        decoder: bool = False,
        **extra: Any,
    ) -> Any:
        """Load `model` (a hub id, a folder, or an already resolved source) with `auto_class`; `decoder`: a causal
        language model's network is what the core runs."""
        source = model if isinstance(model, ModelSource) else resolve_model(model, name=name, revision=revision)
        m = load_model(auto_class, source, options, check_config=check_config, harmless=harmless, decoder=decoder)
        core = cls(
            model=m.net,
            tokenizer=m.tokenizer,
            source=m.source,
            config=m.config,
            options=options,
            max_length=m.max_length,
            device=m.device,
            weights=m.weights,
            streams=default_streams(m.device, options.cpu_streams),
            prepared_masks=takes_prepared_mask(m.net),
            **extra,
        )
        # The trace records `eager_outputs` at the first batch, so the settings a subclass's `load` sets after
        # this (pooling) are the ones it holds.
        core.traced = traced_pass(core.model, core.eager_outputs, core.device, core.prepared_masks)
        return core

    def empty_outputs(self, count: int) -> np.ndarray:
        """An array for the outputs of `count` inputs."""
        raise NotImplementedError

    def batch_outputs(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The outputs of one padded batch on the device, in fp32 (one row or value per input): by the checked
        trace of the whole pass where there is one (`traced.py`), else eagerly."""
        return self.traced(batch) if self.traced is not None else self.eager_outputs(batch)

    def eager_outputs(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """`batch_outputs` computed operator by operator: the network, then the core's head."""
        return self.head(self.network(batch), batch)

    def head(self, output: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The outputs of a batch from the network's `OUTPUT_FIELD` (pooling, normalisation, the score)."""
        raise NotImplementedError

    def network(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The network's `OUTPUT_FIELD` for one padded batch, its attention mask decided on the host (`masks.py`)."""
        return getattr(self.model(**network_inputs(batch, self.prepared_masks)), self.OUTPUT_FIELD)

    def batch_step(self, out: np.ndarray) -> tuple[Callable[..., None], Callable[[], None]]:
        """`forward(indices, batch)` that computes a batch's outputs for `out`, and the `gather` that completes
        `out` afterwards. On a GPU the outputs stay there until the last batch: one copy to the host, and no
        wait for the device between batches (positions stay on the host: copying them to the device each
        batch would wait for the work queued before)."""
        if self.device == "cpu":
            on_host = torch.from_numpy(out)

            def write(idx: np.ndarray, batch: dict[str, torch.Tensor]) -> None:
                on_host[torch.from_numpy(idx)] = self.batch_outputs(batch)

            return write, lambda: None
        outputs: list[torch.Tensor] = []
        positions: list[np.ndarray] = []

        def keep(idx: np.ndarray, batch: dict[str, torch.Tensor]) -> None:
            outputs.append(self.batch_outputs(batch))
            positions.append(idx)

        def gather() -> None:
            if outputs:
                out[np.concatenate(positions)] = torch.cat(outputs).cpu().numpy()

        return keep, gather

    @torch.inference_mode()
    def run_local(
        self,
        encoded: Mapping[str, Sequence[Sequence[int]]],
        *,
        batch_size: int | None = None,
        on_batch: Callable[[int], None] | None = None,
        stats: BatchStats | None = None,
    ) -> np.ndarray:
        """The outputs of tokenised inputs, computed in this process (counted in `stats`, else the core's counters)."""
        if self.device == "cpu" and self.options.precision == "fp16" and not self.warned_cpu_fp16:
            # Said where a CPU computes, not where one loads: with workers this process keeps a CPU copy
            # (for tokenising) of a model the GPUs run in fp16.
            logger.warning("fp16 on CPU is slow and loses accuracy; bf16 or fp32 are better choices there")
            self.warned_cpu_fp16 = True
        stats = stats or self.stats
        started = time.perf_counter()
        out = self.empty_outputs(len(encoded["input_ids"]))
        forward, gather = self.batch_step(out)
        with parallel_passes(forward, self.streams) as submit:
            forward_in_batches(
                self.tokenizer,
                encoded,
                batch_size or self.batch_size,
                self.device,
                stats,
                submit,
                on_batch,
                max_tokens=self.options.batch_tokens,
                mask_padded_only=self.prepared_masks,
            )
        gather()
        stats.seconds += time.perf_counter() - started
        return self.checked(out, stats)

    def compute(
        self,
        encoded: Mapping[str, Sequence[Sequence[int]]],
        *,
        batch_size: int | None = None,
        on_batch: Callable[[int], None] | None = None,
        stats: BatchStats | None = None,
        log: Any = None,
    ) -> np.ndarray:
        """The outputs of tokenised inputs, in input order: by the worker pool when there is one. The work is
        counted in `stats`, else in the core's own counters, and the pool's shards in `log` (a `ShardLog`),
        else in the pool's own log."""
        stats = stats or self.stats
        if self.pool is None:
            return self.run_local(encoded, batch_size=batch_size, on_batch=on_batch, stats=stats)
        out = self.pool.run(dict(encoded), self.empty_outputs(len(encoded["input_ids"])), stats, on_batch, log)
        return self.checked(out, stats)

    def checked(self, out: np.ndarray, stats: BatchStats) -> np.ndarray:
        """`out`, counted as done in `stats`, once it is known to hold no NaN or inf."""
        stats.texts += len(out)
        if not np.isfinite(out).all():
            raise CmtebError(
                f"{self.KIND} {self.source.name} produced NaN or inf {self.OUTPUTS}: try --precision fp32 or check "
                "the weights"
            )
        return out


@dataclass
class PairScorer(ModelCore):
    """What the reranker cores share: `score(pairs)`, one float32 score per (query, passage) pair, from the
    inputs each family builds for a pair (`pair_inputs`)."""

    normalize: bool = False
    KIND: ClassVar[str] = "reranker"
    OUTPUTS: ClassVar[str] = "scores"
    OUTPUT_FIELD: ClassVar[str] = "logits"

    def empty_outputs(self, count: int) -> np.ndarray:
        """An array for `count` scores."""
        return np.empty(count, dtype=np.float32)

    def pair_inputs(self, pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
        """The tokenised inputs of `pairs` (at least `input_ids`), as the family's authors build them."""
        raise NotImplementedError

    def score(
        self,
        pairs: Sequence[tuple[str, str]],
        *,
        batch_size: int | None = None,
        on_batch: Callable[[int], None] | None = None,
        stats: BatchStats | None = None,
        log: Any = None,
    ) -> np.ndarray:
        """Score `[query, passage]` pairs; float32 scores in input order (the work counted in `stats`, else in
        the core's own counters, and a worker pool's shards in `log`, else in the pool's own log)."""
        if len(pairs) == 0:
            return self.empty_outputs(0)
        return self.compute(self.pair_inputs(pairs), batch_size=batch_size, on_batch=on_batch, stats=stats, log=log)
