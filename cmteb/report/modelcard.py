"""The `model-index` front matter of a Hugging Face model card, from result files.

The shape is that of the BGE model cards (seed 003): per task and split, `task.type`,
`dataset.type` (the hub repo), `dataset.name` ("MTEB <Task>"), `config`, `split`, `revision`,
and `metrics` as `type`/`value` pairs in percent, with the metric names those cards use
(mteb 1 names: `cos_sim_spearman`, reranking `map`/`mrr`). It is written with huggingface_hub's
`ModelCard`/`ModelCardData`/`EvalResult`; an existing README keeps its body byte for byte, its
other metadata, and the results of tasks not in the results folder.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from cmteb.errors import CmtebError
from cmteb.io import atomic_write_text
from cmteb.results.reader import UNVERIFIED, ModelResults, ParsedResult, collect_results, refuse_unverified
from cmteb.tasks import types
from cmteb.tasks.registry import TaskSpec


def card_metrics(task_type: str, scores: dict[str, float]) -> dict[str, float]:
    """The metrics a model card lists for one task and split, renamed as the BGE cards name them."""
    renamed = types.task_type(task_type).card_selection(scores)
    return {k: renamed[k] for k in sorted(renamed) if not math.isnan(renamed[k])}


def _split_scores(parsed: ParsedResult, split: str, subset: str | None) -> dict[str, float]:
    """One split's metrics: those of `subset` where the file names its entries' subsets, else every entry's
    mean (a file of mteb 1's shape names none)."""
    entries = parsed.splits[split]
    named = parsed.subsets.get(split, [])
    if subset is not None and subset in named:
        entries = [e for e, s in zip(entries, named, strict=True) if s == subset]
    keys = set().union(*entries) if entries else set()
    return {k: sum(e[k] for e in entries if k in e) / sum(k in e for e in entries) for k in keys}


def card_dataset(spec: TaskSpec, subset: str | None) -> tuple[str, str, str]:
    """(dataset type, name, config) of a task as its protocol ran it, named as the BGE cards name them.

    The repo is the one the protocol read (`C-MTEB/...` under flagembedding-2023); the name is the task mteb
    ran (`CLSClusteringS2S.v2` under cmteb-31); a multilingual task gets its subset as name suffix and config
    (`MTEB AmazonReviewsClassification (zh)`, config `zh`).
    """
    name = f"MTEB {spec.run_as or spec.name}" + (f" ({subset})" if subset else "")
    return spec.repo, name, subset or "default"


def eval_results(results: ModelResults) -> list[EvalResult]:
    """One EvalResult per metric of every task and eval split in `results`, as their protocol ran them."""
    protocol = results.resolved
    out = []
    for spec in protocol.all_tasks:
        parsed = results.tasks.get(spec.name)
        if parsed is None:
            continue
        for subset in spec.hf_subsets or (None,):
            dataset_type, dataset_name, config = card_dataset(spec, subset)
            for split in [s for s in spec.splits if s in parsed.splits] or sorted(parsed.splits):
                for metric, value in card_metrics(spec.type, _split_scores(parsed, split, subset)).items():
                    out.append(
                        EvalResult(
                            task_type=spec.type,
                            dataset_type=dataset_type,
                            dataset_name=dataset_name,
                            dataset_config=config,
                            dataset_split=split,
                            dataset_revision=parsed.dataset_revision or spec.revision,
                            metric_type=metric,
                            metric_value=100 * value,
                        )
                    )
    return out


def _key(result: EvalResult) -> tuple:
    return (result.task_type, result.dataset_type, result.dataset_name, result.dataset_config, result.dataset_split)


def merge_eval_results(existing: Iterable[EvalResult], new: Iterable[EvalResult]) -> list[EvalResult]:
    """`new` replaces the results of the tasks and splits it covers; the other existing results stay."""
    new = list(new)
    covered = {_key(r) for r in new}
    return [r for r in existing if _key(r) not in covered] + new


def find_model_results(
    results_dirs: Iterable[Path],
    model: str,
    revision: str | None = None,
    protocol: str | None = None,
    allow_unverified: bool = False,
) -> ModelResults:
    """The results of `model` (and `revision`, and `protocol`) under `results_dirs`.

    `model` is the name results are filed under or what `cmteb run --model` was given (a local path
    too). A card carries one protocol's numbers: results of several protocols need `protocol`. Results of
    default settings are preferred, then full runs over subsample runs of the same model.
    """
    results_dirs = list(results_dirs)
    found = [r for r in collect_results(results_dirs) if r.answers_to(model)]
    if revision is not None:
        found = [r for r in found if r.revision == revision]
    if not found:
        where = ", ".join(str(d) for d in results_dirs)
        raise CmtebError(
            f"no results for model {model!r} under {where}: pass the name `cmteb leaderboard` shows, or the "
            "--model given to `cmteb run`"
        )
    found = _one_protocol(found, model, protocol)
    # The card shows the model as published: default settings first, then any full run, then a subsample.
    found = [r for r in found if not r.variant] or [r for r in found if "subsample" not in r.variant] or found
    if len({r.revision for r in found}) > 1:
        revisions = ", ".join(sorted(str(r.revision) for r in found))
        raise CmtebError(f"model {model} has results for several revisions ({revisions}): pick one with --revision")
    if len(found) > 1:
        folders = ", ".join(f"{r.folder} ({r.settings_text or 'default settings'})" for r in found)
        raise CmtebError(
            f"model {model} has results in several folders ({folders}): pass the one to use with --results"
        )
    refuse_unverified(found, allow_unverified)
    return found[0]


def _one_protocol(found: list[ModelResults], model: str, protocol: str | None) -> list[ModelResults]:
    """The results of one protocol: `protocol`, or the only one there is."""
    protocols = sorted({r.protocol for r in found})
    if protocol is not None:
        found = [r for r in found if r.protocol == protocol]
        if not found:
            raise CmtebError(
                f"no results of {model} under protocol {protocol}: the results hold {', '.join(protocols)}"
            )
    elif len(protocols) > 1:
        raise CmtebError(
            f"the results of {model} were produced under several protocols ({', '.join(protocols)}): "
            "a model card carries one, pick it with --protocol"
        )
    return found


def card_caveats(results: ModelResults) -> list[str]:
    """What a card must say of results that are not a plain C-MTEB measurement (allowed by a flag)."""
    caveats = []
    if results.data == "samples":
        caveats.append("measured on the bundled sample data, not C-MTEB")
    elif "subsample" in results.variant:
        caveats.append(f"measured on a subsample of {results.variant['subsample']} items per task, not full C-MTEB")
    if results.verification == UNVERIFIED:
        caveats.append("unverified: their run record is missing or damaged")
    return caveats


def write_model_card(results: ModelResults, out: Path, *, model_name: str | None = None) -> Path:
    """Write or update `out` (a model card README) with the model-index of `results`. Results allowed in with a
    caveat (samples, subsample, unverified) carry it in the model-index name and in the card's text."""
    out = Path(out)
    if out.is_dir():
        raise CmtebError(f"--out {out} is a folder: pass the card's file, e.g. --out {out / 'README.md'}")
    new = eval_results(results)
    if not new:
        raise CmtebError(f"the results of {results.model} hold no registered C-MTEB task: nothing to write")
    name = model_name or results.model.split("/")[-1]
    caveats = card_caveats(results)
    notes = [results.settings_text] if results.settings_text else []  # non-default settings say so everywhere
    if notes or caveats:
        name = f"{name} ({'; '.join([*notes, *caveats])})"
    if out.is_file() and caveats:
        raise CmtebError(
            f"results {caveats[0]} are never merged into an existing card ({out}): pass a new file with --out"
        )
    if out.is_file():
        card = ModelCard.load(out)
        existing = card.data.eval_results or []
        card.data.eval_results = merge_eval_results(existing, new)
        card.data.model_name = card.data.model_name or name
        tags = list(card.data.tags or [])
        card.data.tags = tags if "mteb" in tags else [*tags, "mteb"]
        text = f"---\n{card.data.to_yaml()}\n---\n{card.text}"
        # ModelCard keeps the body after the front matter as it was read; check rather than trust.
        original_body = (
            out.read_text(encoding="utf-8").split("\n---\n", 1)[-1] if card.content.startswith("---") else None
        )
        if original_body is not None and not text.endswith(original_body):
            raise CmtebError(f"could not keep the body of {out} unchanged: edit its metadata by hand")
    else:
        data = ModelCardData(model_name=name, eval_results=new, tags=["mteb"])
        said = "".join(f"\n**Results {caveat}.**\n" for caveat in caveats)
        text = f"---\n{data.to_yaml()}\n---\n\n# {name}\n\nC-MTEB results written by cmteb.\n{said}"
    atomic_write_text(out, text)
    return out
