"""Every setting of a run, resolved once at the start and frozen: `RunConfig`.

`resolve_config` turns what the user asked for (the `cmteb run` options, or `cmteb.run`'s keyword
arguments) into one immutable record: the protocol and its selected tasks, the model and reranker
resolved to their files, the pooling and query instruction they get, the load options (device
picked, max length capped at what the model allows, batch settings), and the folders. Nothing
downstream derives a setting again; the run record stores `settings` as it is here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from cmteb.assets import BUNDLED_MODEL_HUB_ID, BUNDLED_MODEL_NAME, SAMPLES_DIR, bundled_model_dir
from cmteb.defaults import (
    CPU_BATCH_TOKENS,
    DEFAULT_BATCH_SIZE,
    DEFAULT_CUTOFF_LAYER,
    DEFAULT_MAX_LENGTH,
    DEFAULT_OUTPUT_DIR,
    DEFAULT_RERANK_TOP_K,
    NOISE_DRAWS,
    PIPELINE_CHOICES,
)
from cmteb.errors import CmtebError
from cmteb.fingerprints import FingerprintMemo, fingerprint_memo_file
from cmteb.models.cache import default_cache_dir
from cmteb.models.devices import name_device
from cmteb.models.families import (
    EMBEDDER,
    LAYERWISE,
    RERANKER,
    ModelFiles,
    ModelRecipe,
    read_model_files,
    resolve_recipe,
)
from cmteb.models.instructions import AskedInstructions, TaskInstructions, plan_instructions
from cmteb.models.lexical import LEXICAL_ARGUMENT, LEXICAL_NAME, LexicalSettings
from cmteb.models.loading import ModelSource, position_config, resolve_model, usable_max_length
from cmteb.models.options import LoadOptions
from cmteb.results.files import NO_REVISION, result_dir
from cmteb.tasks.protocols import DEFAULT_PROTOCOL, Protocol, known_tasks, resolve_protocol
from cmteb.tasks.registry import TaskSpec
from cmteb.workers.options import WorkerOptions, device_kind, resolve_workers


@dataclass(frozen=True)
class EmbedderChoice:
    """The embedding model as the run uses it."""

    source: ModelSource
    recipe: ModelRecipe | None  # how its family runs it (None: the lexical baseline)
    instructions: dict[str, TaskInstructions] = field(default_factory=dict)  # per task name (and mteb's run_as)
    documented: bool = True  # the instructions are the family's own (no --instruction/--instructions/--no-...)
    default_pooling: str | None = None  # with --pooling, what the model's family or files would pool by
    lexical: LexicalSettings | None = None  # the `bm25` baseline: no network, these settings instead

    @property
    def pooling(self) -> str:
        """cls, mean, lasttoken, or none (the lexical baseline)."""
        return self.recipe.pooling if self.recipe is not None else "none"  # type: ignore[return-value]


@dataclass(frozen=True)
class RerankerChoice:
    """The reranker as the run uses it."""

    source: ModelSource
    recipe: ModelRecipe
    normalize: bool  # scores through a sigmoid (rankings unchanged)
    top_k: int  # candidates re-ranked in a two-stage run
    cutoff_layer: int | None = None  # the layerwise reranker's scoring layer


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
class RunConfig(RunFlags):
    """One run's settings, resolved once."""

    protocol: Protocol
    specs: tuple[TaskSpec, ...]
    embedder: EmbedderChoice | None
    reranker: RerankerChoice | None
    load: LoadOptions  # device picked; batch size 1 and no token cap when batch-invariant
    batch_invariant: bool
    data_dir: Path | None
    output_root: Path  # the output folder, or its protocol subfolder for other protocols than the default
    cache_dir: Path
    variant: dict[str, Any]  # the settings that change scores and differ from the model's defaults
    model_argument: str | None = None  # `--model` as given ("m3e-small", a path, a hub id), for finding results
    workers: WorkerOptions = field(default_factory=WorkerOptions)  # where the model work runs: changes speed, no score
    pipeline: bool = False  # the next task's texts are encoded while a task is evaluated (`runner/prefetch.py`)
    noise_draws: int = 0  # perturbed evaluations per task measuring its float noise (`runner/noise.py`)

    @property
    def result_folder(self) -> Path:
        """Where this run's results go: `<output>/results/<model>/<revision>[__<setting>-<value>...]`, so results
        of other settings (pooling, max length, instruction, subsample) never share a folder."""
        suffix = "".join(f"__{key.replace('_', '-')}-{value}" for key, value in self.variant.items())
        revision = self.system_revision or NO_REVISION
        return result_dir(self.output_root, self.system_name, revision + suffix)

    @property
    def kind(self) -> str:
        """embedder, reranker or two-stage."""
        if self.reranker is None:
            return "embedder"
        return "reranker" if self.embedder is None else "two-stage"

    @property
    def data_source(self) -> str:
        """Where the data comes from: "hub", a "local" mirror, or the bundled "samples"."""
        return data_source(self.data_dir)

    @property
    def system_name(self) -> str:
        """The name results are filed under (`M+R` for two stages)."""
        names = [c.source.name for c in (self.embedder, self.reranker) if c is not None]
        return "+".join(names)

    @property
    def naming(self) -> str:
        """Which name and revision results are filed under, and why."""
        chosen = [c.source for c in (self.embedder, self.reranker) if c]
        why = " and ".join(
            f"{s.name} after {s.named_by}, "
            + (f"revision {s.revision} ({s.revision_is})" if s.revision else "no revision")
            for s in chosen
        )
        hint = "" if "--model-name" in why else " (--model-name ORG/NAME files them under another)"
        return f"results filed as {self.system_name}: {why}{hint}"

    @property
    def system_revision(self) -> str | None:
        """The revision results are filed under."""
        revisions = [c.source.revision for c in (self.embedder, self.reranker) if c is not None]
        return None if None in revisions else "+".join(revisions)  # type: ignore[arg-type]

    @property
    def fingerprint_memo(self) -> FingerprintMemo | None:
        """Where local models' and mirrors' content hashes are remembered: the state folder's memo; none with
        `--no-cache` (nothing is written under the cache home then)."""
        return FingerprintMemo(fingerprint_memo_file(self.cache_dir)) if self.use_cache else None

    def task_instructions(self, name: str) -> list[str | None] | None:
        """What each input of task `name` gets in front ([query, document, text]): resume and the result store key
        each task on its own instructions (None: no embedder)."""
        if self.embedder is None or self.embedder.lexical is not None:
            return None
        given = self.embedder.instructions.get(name)
        return [given.query, given.document, given.text] if given is not None else [None, None, None]

    def recipe_text(self) -> str:
        """How the run's models run, in words: family, what recognised it, pooling, instruction sources."""
        parts = []
        for choice in (self.embedder, self.reranker):
            if choice is not None and choice.recipe is not None:
                parts.append(f"{choice.source.name}: {choice.recipe.describe()}")
        if self.embedder is not None and self.embedder.instructions:
            sources = sorted({i.source for i in self.embedder.instructions.values() if i.source != "none"})
            parts.append(f"instructions from {'; '.join(sources)}" if sources else "no instructions")
        return "; ".join(parts)

    def identity(self) -> dict[str, Any]:
        """What the run record says of how results were asked for: `--model` as given, non-default settings."""
        return {"model_argument": self.model_argument, "variant": self.variant}

    def settings(self) -> dict[str, Any]:
        """Everything besides the model and the data that changes scores: resume, the result store
        and the run record all key on this one dict."""
        common = {
            "max_length": self.load.max_length,
            "precision": self.load.precision,
            "device": self.load.device,
            "batch_size": self.load.batch_size,
            "batch_tokens": self.load.batch_tokens,
            "batch_invariant": self.batch_invariant,
            "noise_draws": self.noise_draws,  # changes no score, but what the record holds of each task
            # The model's own code in place of the stock class: other code, other scores (only when on, so
            # the keys of every run without it stay as they were).
            **({"trust_remote_code": True} if self.load.trust_remote_code else {}),
        }
        embedder, reranker = self.embedder, self.reranker
        if embedder is not None:
            recipe = embedder.recipe
            common |= {
                "family": recipe.family if recipe else "lexical",
                "pooling": embedder.pooling,
                "normalize": recipe.normalize if recipe else None,
            }
        if reranker is not None:
            common |= {"reranker_family": reranker.recipe.family, "normalize_scores": reranker.normalize}
            if reranker.cutoff_layer is not None:
                common |= {"cutoff_layer": reranker.cutoff_layer}
        if self.kind == "two-stage":
            common |= {"rerank_top_k": self.reranker.top_k}  # type: ignore[union-attr]
        return common


def data_source(data_dir: Path | None) -> str:
    """Where data in `data_dir` comes from: "hub" (none), the bundled "samples", or a "local" mirror."""
    if data_dir is None:
        return "hub"
    return "samples" if Path(data_dir).resolve() == SAMPLES_DIR.resolve() else "local"


def _capped_lengths(asked: RunOptions, source: ModelSource, recipe: ModelRecipe) -> tuple[int, int]:
    """The max length asked for (the family's default when none is), capped at what the model's position
    embeddings allow, and the length the model gets by default (its family's, capped alike)."""
    config = position_config(source, trust_remote_code=asked.trust_remote_code)
    default = usable_max_length(config, recipe.max_length)
    return (default if asked.max_length is None else usable_max_length(config, asked.max_length)), default


def _variant(asked: RunOptions, embedder: EmbedderChoice | None, max_length: int, default_length: int) -> dict:
    """The settings of a run that change scores and differ from the model's defaults, in a fixed order (they
    name the result folder, the leaderboard row and the model card entry). Precision, device and batching
    move scores by float noise only: the run record keeps them."""
    variant: dict[str, Any] = {}
    if embedder is not None and asked.pooling is not None and embedder.default_pooling != asked.pooling:
        variant["pooling"] = asked.pooling
    if max_length != default_length:
        variant["max_length"] = max_length
    if embedder is not None and not embedder.documented:
        variant["instruction"] = _asked_instructions_tag(asked)
    if asked.subsample is not None:
        variant["subsample"] = asked.subsample
    if asked.subsample_corpus is not None:
        variant["subsample_corpus"] = asked.subsample_corpus
    if asked.reranker is not None and embedder is not None and asked.rerank_top_k != DEFAULT_RERANK_TOP_K:
        variant["top_k"] = asked.rerank_top_k
    return variant


def _asked_instructions_tag(asked: RunOptions) -> str:
    """Names the instructions asked for in a result folder: "none", or a hash of --instruction's text or of the
    --instructions file's content."""
    if asked.no_instruction:
        return "none"
    given = asked.instruction.encode() if asked.instruction is not None else Path(asked.instructions).read_bytes()  # type: ignore[arg-type]
    return hashlib.sha256(given).hexdigest()[:8]


def _lexical(asked: RunOptions) -> EmbedderChoice:
    """The `bm25` baseline, named by its settings' hash; settings of a network are refused."""
    given = [
        f"--{k.replace('_', '-')}"
        for k in ("reranker", "pooling", "instruction", "instructions", "devices", "ray")
        if getattr(asked, k)
    ]
    if given:
        raise CmtebError(f"bm25 is a lexical baseline without a network: drop {', '.join(given)}")
    settings = LexicalSettings()
    source = ModelSource(
        path=LEXICAL_ARGUMENT,
        name=asked.model_name or LEXICAL_NAME,
        revision=asked.revision or settings.fingerprint(),
        local_dir=None,
        named_by="the reserved name bm25",
        revision_is="a hash of its settings: tokenizer, k1, b, n-gram range, width",
    )
    return EmbedderChoice(source, None, lexical=settings)


def _model_source(model: str, asked: RunOptions, name: str | None, revision: str | None) -> ModelSource:
    """`model` (a hub id, a folder, or the bundled model's name) resolved to its files."""
    bundled = model == BUNDLED_MODEL_NAME
    if bundled:
        model, name = str(bundled_model_dir()), name or BUNDLED_MODEL_HUB_ID
    source = resolve_model(model, name=name, revision=revision, memo=asked.fingerprint_memo())
    return replace(source, named_by="the bundled model's hub id") if bundled and not asked.model_name else source


def _refuse_remote_code(files: ModelFiles, asked: RunOptions) -> None:
    """A model that maps its classes to code of its own runs only with --trust-remote-code (never silently on
    the stock class)."""
    if files.remote_code and not asked.trust_remote_code:
        raise CmtebError(
            f"model {files.name} ships its own code (an auto_map in its config): rerun with --trust-remote-code "
            "if you trust it"
        )


def _embedder(model: str, asked: RunOptions, specs: Sequence[TaskSpec]) -> EmbedderChoice:
    """The embedding model resolved to its files, its family's recipe, and each task's instructions."""
    if model == LEXICAL_ARGUMENT:
        return _lexical(asked)
    source = _model_source(model, asked, asked.model_name, asked.revision)
    files = read_model_files(source.name, source.local_dir)
    _refuse_remote_code(files, asked)
    recipe = resolve_recipe(EMBEDDER, files, asked.pooling)
    wanted = AskedInstructions(asked.instruction, _path(asked.instructions), asked.no_instruction)
    plan = plan_instructions(
        recipe.instructions,
        (files.st.prompts, files.st.default_prompt_name),
        specs,
        list(known_tasks()),
        wanted,
    )
    default_pooling = None
    if asked.pooling is not None:
        try:
            default_pooling = resolve_recipe(EMBEDDER, files).pooling
        except CmtebError:  # no family covers it: the pooling is the one asked for
            default_pooling = None
    return EmbedderChoice(source, recipe, plan, not wanted.overrides, default_pooling=default_pooling)


def _path(value: Path | str | None) -> Path | None:
    return None if value is None else Path(value)


def _select(protocol: Protocol, tasks: Sequence[str] | None, types: Sequence[str] | None, kind: str) -> list[TaskSpec]:
    """The protocol's tasks the run evaluates; a reranker alone takes Reranking, two stages Retrieval."""
    if kind == "embedder":
        specs = protocol.select(tasks, types)
    else:
        allowed = "Reranking" if kind == "reranker" else "Retrieval"
        specs = protocol.select(tasks, types or (None if tasks else [allowed]))
        wrong = [s.name for s in specs if s.type != allowed]
        if wrong:
            what = (
                "a reranker alone takes Reranking"
                if kind == "reranker"
                else "a two-stage run (--model with --reranker) takes Retrieval"
            )
            raise CmtebError(f"{what} tasks, not {', '.join(wrong)}: drop them from --tasks/--types")
    if not specs:
        raise CmtebError("no task matches --tasks/--types: `cmteb tasks` lists the registered tasks")
    return specs


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

    def check(self, model: str | None) -> str:
        """Refuse contradictory or out-of-range choices; the kind of run asked for."""
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
        return "embedder" if self.reranker is None else ("reranker" if model is None else "two-stage")

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

    def reranker_choice(self, model: str | None) -> RerankerChoice | None:
        """The reranker resolved to its files and family (named by --model-name/--revision when it runs
        alone)."""
        if self.reranker is None:
            return None
        name, revision = (self.model_name, self.revision) if model is None else (None, None)
        source = resolve_model(self.reranker, name=name, revision=revision, memo=self.fingerprint_memo())
        files = read_model_files(source.name, source.local_dir)
        _refuse_remote_code(files, self)
        recipe = resolve_recipe(RERANKER, files)
        if self.cutoff_layers is not None and recipe.core != LAYERWISE:
            raise CmtebError(f"--cutoff-layers is for layerwise rerankers; {source.name} is a {recipe.core} reranker")
        cutoff = (self.cutoff_layers or DEFAULT_CUTOFF_LAYER) if recipe.core == LAYERWISE else None
        return RerankerChoice(source, recipe, self.normalize_scores, self.rerank_top_k, cutoff)


def _pipelined(choice: str, load: LoadOptions, workers: WorkerOptions) -> bool:
    """Whether encoding runs ahead of evaluation: `auto` when the model runs on a GPU or on workers (on CPU
    cores alone both phases would share the same cores)."""
    if choice not in PIPELINE_CHOICES:
        raise CmtebError(f"--pipeline must be one of {', '.join(PIPELINE_CHOICES)}, got {choice!r}")
    if choice == "auto":
        return (load.device or "cpu").startswith("cuda") or workers.pooled
    return choice == "on"


def _noise_draws(asked: RunOptions) -> int:
    """Perturbed evaluations per task: as asked, else NOISE_DRAWS in a quick (`--subsample`) run, which `cmteb
    compare` judges against its noise, and none in a full run, where they would double the evaluation time."""
    if asked.noise_draws is not None:
        return asked.noise_draws
    return NOISE_DRAWS if asked.subsample is not None else 0


def resolve_config(model: str | None = None, **options: Any) -> RunConfig:
    """Resolve every setting of a run once; bad input fails here, before any data or weights are read.

    `options` are `RunOptions` fields; an unknown one is a TypeError, as for any Python function.
    """
    asked = RunOptions(**options)
    kind = asked.check(model)
    protocol = resolve_protocol(asked.protocol)
    specs = tuple(_select(protocol, asked.tasks, asked.types, kind))  # task errors before model errors
    invariant = asked.subsample is not None if asked.batch_invariant is None else asked.batch_invariant
    workers = resolve_workers(asked.devices, asked.ray, asked.workers, asked.device)
    embedder = _embedder(model, asked, specs) if model is not None else None
    cross = asked.reranker_choice(model)
    root = Path(asked.output_dir)
    network = embedder if embedder is not None and embedder.lexical is None else cross
    if network is not None:  # a lexical baseline has no position embeddings
        max_length, default_length = _capped_lengths(asked, network.source, network.recipe)  # type: ignore[arg-type]
    else:
        max_length = default_length = asked.max_length or DEFAULT_MAX_LENGTH
    load = asked.load_options(invariant, workers, max_length, network.recipe if network else None)
    return RunConfig(
        protocol=protocol,
        specs=specs,
        embedder=embedder,
        reranker=cross,
        load=load,
        batch_invariant=invariant,
        data_dir=Path(asked.data_dir) if asked.data_dir is not None else None,
        output_root=root if protocol.name == DEFAULT_PROTOCOL else root / protocol.name,
        cache_dir=Path(asked.cache_dir) if asked.cache_dir is not None else default_cache_dir(),
        variant=_variant(asked, embedder, load.max_length, default_length),
        model_argument=model,
        workers=workers,
        pipeline=_pipelined(asked.pipeline, load, workers),
        noise_draws=_noise_draws(asked),
        **{f.name: getattr(asked, f.name) for f in fields(RunFlags)},
    )
