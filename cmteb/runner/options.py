"""What a run was asked for, with the defaults: `RunOptions` (the `cmteb run` options, `cmteb.run`'s keywords),
checked before anything is resolved, and the flags a run takes as they are (`RunFlags`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cmteb.defaults import (
    CPU_BATCH_TOKENS,
    DEFAULT_BATCH_SIZE,
    DEFAULT_OUTPUT_DIR,
    DEFAULT_RERANK_TOP_K,
    NOISE_DRAWS,
    PIPELINE_CHOICES,
)
from cmteb.errors import CmtebError
from cmteb.fingerprints import FingerprintMemo, fingerprint_memo_file
from cmteb.kinds import RunKind
from cmteb.models.devices import name_device
from cmteb.models.lexical.settings import LEXICAL_ARGUMENT
from cmteb.models.options import LoadOptions
from cmteb.workers.options import WorkerOptions, device_kind

if TYPE_CHECKING:
    from cmteb.models.families import ModelRecipe


@dataclass(frozen=True, kw_only=True)
class RunFlags:
    """Choices a run takes as they are asked: nothing to resolve, so `RunOptions` and `RunConfig` share them."""

    use_cache: bool = True
    subsample: int | None = None
    subsample_corpus: int | None = None
    allow_revision_mismatch: bool = False
    overwrite: bool = False
    show_progress: bool = True
    debug: bool = False


@dataclass(frozen=True, kw_only=True)
class RunOptions(RunFlags):
    """What was asked for, with the defaults: `cmteb.run`'s keywords and the `cmteb run` options."""

    reranker: str | None = None
    rerank_top_k: int = DEFAULT_RERANK_TOP_K
    normalize_scores: bool = False
    tasks: Sequence[str] | None = None
    types: Sequence[str] | None = None
    protocol: str | None = None
    data_dir: Path | str | None = None
    output_dir: Path | str = DEFAULT_OUTPUT_DIR
    cache_dir: Path | str | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    batch_tokens: int | None = None  # None: the device's default (CPU_BATCH_TOKENS on a CPU); 0: no cap
    cpu_streams: int | None = None  # forward passes at once on a CPU; None: one per core torch uses
    batch_invariant: bool | None = None  # None: on with subsample
    max_length: int | None = None  # None: the model family's default (512 for BERTs, 8192 for bge-m3, decoders)
    precision: str | None = None  # None: fp32, or the family's precision on a GPU (bf16 for Gemma)
    device: str | None = None
    trust_remote_code: bool = False
    allow_missing_weights: bool = False
    instruction: str | None = None
    instructions: Path | str | None = None  # a JSON file of per-task instructions
    no_instruction: bool = False
    pooling: str | None = None
    cutoff_layers: int | None = None  # the layerwise reranker's scoring layer
    model_name: str | None = None
    revision: str | None = None
    devices: str | None = None  # "cuda:0,cuda:1": one worker process per device
    ray: str | None = None  # a Ray cluster's address, or "local" for a Ray instance of this run
    workers: int | None = None  # Ray workers
    pipeline: str = "auto"  # encode ahead of evaluation: on, off, or auto (on with a GPU or workers)
    noise_draws: int | None = None  # None: NOISE_DRAWS with subsample, else none

    def check(self, model: str | None) -> RunKind:
        """Refuse contradictory or out-of-range choices; the kind of run asked for (a `bm25` --model is the
        lexical baseline)."""
        if model is None and self.reranker is None:
            raise CmtebError("nothing to evaluate: pass --model, --reranker, or both")
        if self.rerank_top_k < 1:
            raise CmtebError(f"--rerank-top-k must be positive, got {self.rerank_top_k}")
        if self.batch_tokens is not None and self.batch_tokens < 0:
            raise CmtebError(f"--batch-tokens must be a number of tokens, or 0 for no cap; got {self.batch_tokens}")
        if self.subsample is not None and self.subsample < 1:
            raise CmtebError(f"--subsample must be a positive number of items, got {self.subsample}")
        if self.noise_draws is not None and self.noise_draws < 0:
            raise CmtebError(f"--noise-draws must be 0 or more, got {self.noise_draws}")
        if self.subsample_corpus is not None and self.subsample_corpus < 0:
            raise CmtebError(f"--subsample-corpus must be 0 or more documents, got {self.subsample_corpus}")
        if self.cache_dir is not None and Path(self.cache_dir).exists() and not Path(self.cache_dir).is_dir():
            raise CmtebError(f"--cache-dir {self.cache_dir} is a file: pass a folder (it is created if missing)")
        if self.data_dir is not None and not Path(self.data_dir).is_dir():
            raise CmtebError(
                f"--data-dir {self.data_dir} does not exist: pass the folder that holds the local dataset copies"
            )
        if self.reranker is not None:
            return RunKind.RERANKER if model is None else RunKind.TWO_STAGE
        return RunKind.LEXICAL if model == LEXICAL_ARGUMENT else RunKind.EMBEDDER

    def load_options(
        self, invariant: bool, workers: WorkerOptions, max_length: int, recipe: ModelRecipe | None
    ) -> LoadOptions:
        """How the cores load and batch, texts cut at `max_length` (--max-length as the model allows it); one
        text per forward pass when batch-invariant. The device is the listed devices' kind with --devices;
        with Ray, what --device says (the cluster's GPUs need not be this machine's), else this machine's. The
        precision is --precision, else the family's on a GPU (`recipe.gpu_precision`), else fp32."""
        if workers.ray:
            device = device_kind(self.device) or name_device(None)
        else:
            device = name_device(workers.device_kind or self.device)
        on_gpu = recipe is not None and recipe.gpu_precision and not device.startswith("cpu")
        return LoadOptions(
            max_length=max_length,
            batch_size=1 if invariant else self.batch_size,  # its float result then depends on the text alone
            batch_tokens=None if invariant else self.tokens_per_pass(device, max_length),
            precision=self.precision or (recipe.gpu_precision if on_gpu else "fp32"),  # type: ignore[union-attr]
            device=device,
            cpu_streams=self.cpu_streams,
            trust_remote_code=self.trust_remote_code,
            allow_missing_weights=self.allow_missing_weights,
        )

    def tokens_per_pass(self, device: str, max_length: int) -> int | None:
        """The padded-token budget of a forward pass (`plan.batch_count` fills it): --batch-tokens (0: none,
        every pass --batch-size texts), else CPU_BATCH_TOKENS on a CPU and --batch-size x `max_length` (the
        longest a text is cut at) on a GPU.

        Why 1,024 on a CPU: a pass of a few thousand tokens spills its activations out of the cache, and the
        element-wise work between the matmuls (GELU, bias, residual, layer norm) then waits on memory. Passes
        of about 1,024 tokens ran 5-40 % faster on 2 cores (m3e-small and a bge-base shape, texts of 32 to
        512 tokens: `bench/pass_tokens.py`). Why the batch's longest case on a GPU: its memory is what
        --batch-size already allows, and short texts then fill the GPU (256 texts of 38 tokens ran at 0.23 of
        the matmul rate on an H200, 256 of 512 tokens at 0.51)."""
        if self.batch_tokens is not None:
            return self.batch_tokens or None
        return CPU_BATCH_TOKENS if device.startswith("cpu") else self.batch_size * max_length

    def fingerprint_memo(self) -> FingerprintMemo | None:
        """The state folder's fingerprint memo (`--cache-dir`, else the default's); none with `--no-cache`."""
        if not self.use_cache:
            return None
        return FingerprintMemo(fingerprint_memo_file(Path(self.cache_dir) if self.cache_dir is not None else None))


def pipelined(choice: str, load: LoadOptions, workers: WorkerOptions) -> bool:
    """Whether encoding runs ahead of evaluation: `auto` when the model runs on a GPU or on workers (on CPU
    cores alone both phases would share the same cores)."""
    if choice not in PIPELINE_CHOICES:
        raise CmtebError(f"--pipeline must be one of {', '.join(PIPELINE_CHOICES)}, got {choice!r}")
    if choice == "auto":
        return (load.device or "cpu").startswith("cuda") or workers.pooled
    return choice == "on"


def noise_draws(asked: RunOptions) -> int:
    """Perturbed evaluations per task: as asked, else NOISE_DRAWS in a quick (`--subsample`) run, which `cmteb
    compare` judges against its noise, and none in a full run, where they would double the evaluation time."""
    if asked.noise_draws is not None:
        return asked.noise_draws
    return NOISE_DRAWS if asked.subsample is not None else 0
