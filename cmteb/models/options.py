"""How a model core is loaded and batched, as a run resolves it: kept free of torch, so resolving a
run's settings (and refusing bad ones) never waits for torch to import."""

from __future__ import annotations

from dataclasses import dataclass

from cmteb.defaults import DEFAULT_BATCH_SIZE, DEFAULT_MAX_LENGTH
from cmteb.errors import CmtebError


@dataclass(frozen=True)
class LoadOptions:
    """How a core is loaded and batched: the same for the encoder and the reranker."""

    max_length: int = DEFAULT_MAX_LENGTH
    batch_size: int = DEFAULT_BATCH_SIZE
    batch_tokens: int | None = None  # also cap each batch at this many padded tokens
    precision: str = "fp32"
    device: str | None = None  # None: cuda when present, else cpu
    cpu_streams: int | None = None  # forward passes at once on a CPU, one core each; None: one per core
    trust_remote_code: bool = False
    allow_missing_weights: bool = False  # run a checkpoint that lacks weights of the network (they are random)

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise CmtebError(f"--batch-size must be positive, got {self.batch_size}")
        if self.batch_tokens is not None and self.batch_tokens < 1:
            raise CmtebError(f"--batch-tokens must be positive, got {self.batch_tokens}")
        if self.cpu_streams is not None and self.cpu_streams < 1:
            raise CmtebError(f"--cpu-streams must be a positive number of passes, got {self.cpu_streams}")
