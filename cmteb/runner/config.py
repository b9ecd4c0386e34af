"""Every setting of a run, resolved once at the start and frozen: `RunConfig`.

`resolve_config` turns what the user asked for (the `cmteb run` options, or `cmteb.run`'s keyword
arguments) into one immutable record: the protocol and its selected tasks, the model and reranker
resolved to their files, the pooling and query instruction they get, the load options (device
picked, max length capped at what the model allows, batch settings), and the folders. Nothing
downstream derives a setting again; the run record stores `settings` as it is here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from cmteb.assets import SAMPLES_DIR
from cmteb.defaults import DEFAULT_MAX_LENGTH
from cmteb.errors import CmtebError
from cmteb.fingerprints import FingerprintMemo, fingerprint_memo_file
from cmteb.kinds import RunKind
from cmteb.models.cache import default_cache_dir
from cmteb.models.options import LoadOptions
from cmteb.results.files import NO_REVISION, result_dir
from cmteb.runner.choices import (
    EmbedderChoice,
    RerankerChoice,
    capped_lengths,
    embedder_choice,
    reranker_choice,
    variant_of,
)
from cmteb.runner.options import RunFlags, RunOptions, noise_draws, pipelined
from cmteb.tasks.protocols import DEFAULT_PROTOCOL, Protocol, resolve_protocol
from cmteb.tasks.registry import TaskSpec
from cmteb.workers.options import WorkerOptions, resolve_workers


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
    kind: RunKind = RunKind.EMBEDDER  # what runs: decided once, from what was asked

    @property
    def result_folder(self) -> Path:
        """Where this run's results go: `<output>/results/<model>/<revision>[__<setting>-<value>...]`, so results
        of other settings (pooling, max length, instruction, subsample) never share a folder."""
        suffix = "".join(f"__{key.replace('_', '-')}-{value}" for key, value in self.variant.items())
        revision = self.system_revision or NO_REVISION
        return result_dir(self.output_root, self.system_name, revision + suffix)

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
        if self.kind is RunKind.TWO_STAGE:
            common |= {"rerank_top_k": self.reranker.top_k}  # type: ignore[union-attr]
        return common


def data_source(data_dir: Path | None) -> str:
    """Where data in `data_dir` comes from: "hub" (none), the bundled "samples", or a "local" mirror."""
    if data_dir is None:
        return "hub"
    return "samples" if Path(data_dir).resolve() == SAMPLES_DIR.resolve() else "local"


def _select(
    protocol: Protocol, tasks: Sequence[str] | None, types: Sequence[str] | None, kind: RunKind
) -> list[TaskSpec]:
    """The protocol's tasks the run evaluates; a reranker alone takes Reranking, two stages Retrieval."""
    if kind in (RunKind.EMBEDDER, RunKind.LEXICAL):
        specs = protocol.select(tasks, types)
    else:
        allowed = "Reranking" if kind is RunKind.RERANKER else "Retrieval"
        specs = protocol.select(tasks, types or (None if tasks else [allowed]))
        wrong = [s.name for s in specs if s.type != allowed]
        if wrong:
            what = (
                "a reranker alone takes Reranking"
                if kind is RunKind.RERANKER
                else "a two-stage run (--model with --reranker) takes Retrieval"
            )
            raise CmtebError(f"{what} tasks, not {', '.join(wrong)}: drop them from --tasks/--types")
    if not specs:
        raise CmtebError("no task matches --tasks/--types: `cmteb tasks` lists the registered tasks")
    return specs


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
    embedder = embedder_choice(model, asked, specs) if model is not None else None
    cross = reranker_choice(asked, model)
    root = Path(asked.output_dir)
    network = embedder if embedder is not None and embedder.lexical is None else cross
    if network is not None:  # a lexical baseline has no position embeddings
        max_length, default_length = capped_lengths(asked, network.source, network.recipe)  # type: ignore[arg-type]
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
        variant=variant_of(asked, embedder, load.max_length, default_length),
        model_argument=model,
        workers=workers,
        pipeline=pipelined(asked.pipeline, load, workers),
        noise_draws=noise_draws(asked),
        kind=kind,
        **{f.name: getattr(asked, f.name) for f in fields(RunFlags)},
    )
