"""Read result folders, cmteb's or anyone's mteb results, in both JSON shapes found in the wild.

- mteb 2 `TaskResult`: `{"task_name", "dataset_revision", "scores": {split: [{metric: value, ...}]}}`;
- mteb 1, as FlagEmbedding's C-MTEB scripts wrote it: `{"mteb_dataset_name", split: {"cos_sim":
  {"ap": ...}, "evaluation_time": ...}}`, sometimes one level deeper per language (`zh`, `zh-CN`).

Both are flattened to `{metric: value}` per split and subset, with mteb 1 names mapped to mteb 2
names (`cos_sim_ap` -> `cosine_ap`; reranking `map` -> `map_at_1000`, `mrr` -> `mrr_at_10`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cmteb.errors import CmtebError, warn
from cmteb.kinds import RunKind
from cmteb.results.files import (
    CHECKSUMS,
    LEGACY_RUN_RECORD,
    MODEL_META,
    NO_REVISION,
    PROVENANCE_KEY,
    REWRITING,
    RUN_RECORD,
    checksum_problem,
    read_run_record,
    settings_text,
)
from cmteb.tasks.protocols import UNRECORDED, Protocol, known_tasks, load_protocols, resolve_protocol, task_aliases
from cmteb.tasks.registry import TaskSpec

NOT_RESULTS = {MODEL_META, LEGACY_RUN_RECORD}
#: A result folder's own subfolder for the run record: no results in it.
RECORD_DIR = Path(RUN_RECORD).parent.name
#: mteb 1 metric names -> mteb 2 names (the rest keep their name).
V1_PREFIXES = {"cos_sim_": "cosine_"}
V1_RERANKING = {"map": "map_at_1000", "mrr": "mrr_at_10"}
ZH_SUBSETS = ("zh", "zh-CN", "default")


@dataclass
class ParsedResult:
    """One task's scores from one result file."""

    task_name: str
    path: Path
    dataset_revision: str | None
    shape: str  # "mteb2" or "mteb1"
    splits: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    protocol: str | None = None  # from the file's cmteb block; files of other tools do not say
    subsets: dict[str, list[str]] = field(default_factory=dict)  # per split, each entry's subset ("default")


def _flatten(prefix: str, value: Any, out: dict[str, float]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}_{key}" if prefix else str(key), inner, out)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        out[prefix] = float(value)


def _v1_names(metrics: dict[str, float], task_type: str | None) -> dict[str, float]:
    renamed = {}
    for key, value in metrics.items():
        for old, new in V1_PREFIXES.items():
            if key.startswith(old):
                key = new + key[len(old) :]
        if task_type == "Reranking":
            key = V1_RERANKING.get(key, key)
        renamed[key] = value
    return renamed


def parse_result_file(path: Path, registry_types: dict[str, str] | None = None) -> ParsedResult | None:
    """Parse one JSON result file; None when it is not a task result (predictions, metadata)."""
    path = Path(path)
    if path.name in NOT_RESULTS or path.name.endswith("_predictions.json"):
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CmtebError(f"result file {path} is not valid JSON ({exc}): fix or remove it") from exc
    return parse_result_data(data, path, registry_types)


def parse_result_data(data: Any, path: Path, registry_types: dict[str, str] | None = None) -> ParsedResult:
    """Parse the JSON object of a result file (`path` names it in messages and in the result)."""
    if not isinstance(data, dict):
        raise CmtebError(f"result file {path} does not hold a result object: fix or remove it")
    types = registry_types if registry_types is not None else {n: t.type for n, t in known_tasks().items()}
    if "scores" in data:
        name = data.get("task_name") or path.stem
        provenance = data.get(PROVENANCE_KEY) if isinstance(data.get(PROVENANCE_KEY), dict) else {}
        parsed = ParsedResult(name, path, data.get("dataset_revision"), "mteb2", protocol=provenance.get("protocol"))
        for split, entries in data["scores"].items():
            if not isinstance(entries, list):
                raise CmtebError(f"result file {path}: scores of split {split!r} are not a list: fix or remove it")
            parsed.splits[split], parsed.subsets[split] = [], []
            for entry in entries:
                flat: dict[str, float] = {}
                _flatten("", {k: v for k, v in entry.items() if k not in ("hf_subset", "languages")}, flat)
                parsed.splits[split].append(flat)
                parsed.subsets[split].append(str(entry.get("hf_subset", "default")))
        return parsed
    name = data.get("mteb_dataset_name") or data.get("task_name") or path.stem
    parsed = ParsedResult(name, path, data.get("dataset_revision"), "mteb1")
    for split in ("test", "dev", "validation", "train"):
        block = data.get(split)
        if not isinstance(block, dict):
            continue
        subsets = [block[s] for s in ZH_SUBSETS if isinstance(block.get(s), dict)] or [block]
        for subset in subsets:
            flat = {}
            _flatten("", subset, flat)
            parsed.splits.setdefault(split, []).append(_v1_names(flat, types.get(name)))
    if not parsed.splits:
        raise CmtebError(f"result file {path} holds no scores in a known shape: fix or remove it")
    return parsed


@dataclass
class ModelResults:
    """All task results of one model revision in one folder."""

    model: str
    revision: str | None
    folder: Path
    embedding_dim: int | None
    tasks: dict[str, ParsedResult]
    protocol: str = UNRECORDED  # as the run record says; results from other tools do not say
    data: str = "hub"  # "hub", "local" (a --data-dir mirror) or "samples" (the bundled sample mirrors)
    variant: dict[str, Any] = field(default_factory=dict)  # non-default settings that change scores
    asked_as: tuple[str, ...] = ()  # what `cmteb run --model` was given (and the local folder it named)
    baseline: bool = False  # a lexical baseline (`cmteb run --model bm25`), not an embedding model
    verification: str = "verified"  # VERIFIED, UNVERIFIED (cmteb's files, record missing or damaged), EXTERNAL

    @property
    def settings_text(self) -> str:
        """The non-default settings in words ("pooling cls, max length 64"), or ""."""
        return settings_text(self.variant)

    def answers_to(self, model: str) -> bool:
        """Whether `model` names these results: the name they are filed under, or what `cmteb run --model` was
        given (a local path matches the same folder however it is written)."""
        if model in (self.model, *self.asked_as):
            return True
        path = Path(model).expanduser()
        return path.exists() and any(Path(a).expanduser().resolve() == path.resolve() for a in self.asked_as)

    @property
    def resolved(self) -> Protocol:
        """The protocol the results were produced under (a protocol this version does not know: unrecorded)."""
        return resolve_protocol(self.protocol if self.protocol in load_protocols() else UNRECORDED)

    def task_score(self, name: str, metric: str | None = None) -> float | None:
        """A task's score (a fraction) by its protocol's metric and split rule; None when absent."""
        protocol = self.resolved
        parsed = self.tasks.get(name)
        if parsed is None or name not in protocol.specs():
            return None
        return protocol.task_score(protocol.get(name), parsed.splits, metric)

    def task_scores(self) -> dict[str, float]:
        """Every task's score (fractions) by its protocol's rules."""
        scores = {name: self.task_score(name) for name in self.tasks}
        return {name: value for name, value in scores.items() if value is not None}


def _result_folders(root: Path) -> Iterator[Path]:
    if any(p.suffix == ".json" and p.name not in NOT_RESULTS for p in root.glob("*.json")):
        yield root
    for child in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if (child.parent / RUN_RECORD).is_file() and child.name == RECORD_DIR:
            continue
        yield from _result_folders(child)


def _identify(folder: Path, root: Path) -> tuple[str, str | None, int | None]:
    """Model name, revision and embedding width of a result folder."""
    meta_file = folder / MODEL_META
    meta: dict[str, Any] = {}
    if meta_file.is_file():
        try:
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise CmtebError(f"{meta_file} is not valid JSON ({exc}): fix or remove it") from exc
    parts = folder.relative_to(root).parts if folder != root else (folder.parent.name, folder.name)
    if len(parts) >= 2:
        model_dir, revision = parts[-2], parts[-1]
    else:  # <root>/<model>/<Task>.json, as FlagEmbedding's scripts lay results out
        model_dir, revision = parts[-1], None
    name = meta.get("name") or model_dir.replace("__", "/")
    revision = meta.get("revision") or revision
    dim = meta.get("embed_dim")
    return name, None if revision == NO_REVISION else revision, dim if isinstance(dim, int) else None


def _data_origin(record: dict[str, Any]) -> str:
    """Where a cmteb run read its data, from its run record: hub, a local mirror, or the samples."""
    sources = {entry.get("data_source") for entry in record["tasks"].values()}
    for source in ("samples", "local"):
        if source in sources:
            return source
    return "hub"


def _protocol_of(folder: Path, record: dict[str, Any], tasks: Iterable[ParsedResult]) -> str:
    """The one protocol of a folder's results, from the result files and the run record."""
    protocols = {entry.get("protocol") for entry in record["tasks"].values()}
    protocols |= {parsed.protocol for parsed in tasks}
    protocols.discard(None)
    if len(protocols) > 1:
        raise CmtebError(f"{folder} mixes results of protocols {sorted(protocols)}: keep one protocol per folder")
    return protocols.pop() if protocols else UNRECORDED


def _variant(record: dict[str, Any]) -> dict[str, Any]:
    """The run's non-default settings; runs recorded before they were kept name their subsample only."""
    if isinstance(record.get("variant"), dict):
        return record["variant"]
    subsamples = {entry.get("subsample") for entry in record["tasks"].values()} - {None}
    return {"subsample": subsamples.pop()} if len(subsamples) == 1 else {}


#: How far a folder's results are vouched for: by an intact run record listing each file with its checksum;
#: cmteb's result files whose run record is missing or damaged; results of other tools (mteb, FlagEmbedding's
#: scripts), which keep no run record.
VERIFIED, UNVERIFIED, EXTERNAL = "verified", "unverified", "external"


def _verification(record: dict[str, Any], tasks: Iterable[ParsedResult]) -> str:
    """VERIFIED, UNVERIFIED or EXTERNAL (see above)."""
    if record.get("damaged"):
        return UNVERIFIED
    if record["tasks"]:
        return VERIFIED
    return UNVERIFIED if any(parsed.protocol is not None for parsed in tasks) else EXTERNAL


#: The run record's `kind` of a lexical baseline run.
LEXICAL_KIND = RunKind.LEXICAL.value


def _asked_as(record: dict[str, Any]) -> tuple[str, ...]:
    """What `cmteb run --model` was given, and the path it resolved to, from the run record."""
    return tuple(str(record[k]) for k in ("model_argument", "model_path") if record.get(k))


def _folder_tasks(
    folder: Path, record: dict[str, Any], aliases: dict[str, str], types: dict[str, str]
) -> dict[str, ParsedResult]:
    """The task results of one folder. A folder with a run record yields only the files it lists, each only
    unchanged: a task it does not list (a stray `ATEC.json`) and other files of a listed task (an
    `AFQMC.old.json`, a copy from another run) are ignored with a note. Without a record every result file is
    read (the folder is then unverified, or another tool's); two files of one task are an error, never a silent
    choice."""
    recorded = {name: entry.get(CHECKSUMS) for name, entry in record["tasks"].items()}
    tasks: dict[str, ParsedResult] = {}
    for path in sorted(folder.glob("*.json")):
        parsed = parse_result_file(path, types)
        if parsed is None or parsed.task_name not in aliases:
            continue
        name = aliases[parsed.task_name]
        checksums = recorded.get(name)
        if recorded and name not in recorded:
            warn(f"{path} ignored: the run record {folder / RUN_RECORD} does not list {name}")
            continue
        if isinstance(checksums, dict):
            if path.name not in checksums:
                warn(f"{path} ignored: the run record {folder / RUN_RECORD} lists another file for {name}")
                continue
            problem = checksum_problem(folder, {path.name: checksums[path.name]})
            if problem is not None and REWRITING in record["tasks"][name]:
                raise CmtebError(
                    f"{path}: a rerun of {name} stopped while writing its files (killed or crashed): rerun it "
                    f"(`cmteb run ... --tasks {name}`, the same command) to finish"
                )
            if problem is not None:
                raise CmtebError(
                    f"{path}: {problem} (its checksum differs from the run record): rerun {name} "
                    f"(`cmteb run ... --tasks {name}`) or restore the file"
                )
        if name in tasks:
            raise CmtebError(f"{folder} holds two results of {name} ({tasks[name].path.name}, {path.name}): keep one")
        tasks[name] = parsed
    return tasks


def collect_results(roots: Iterable[Path]) -> list[ModelResults]:
    """Every model revision found under `roots`, with its registered tasks' results."""
    known = known_tasks()
    aliases = task_aliases()
    types = {alias: known[name].type for alias, name in aliases.items()}
    found: list[ModelResults] = []
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            raise CmtebError(
                f"results folder {root} does not exist: pass a folder written by `cmteb run` or `mteb run`"
            )
        for folder in _result_folders(root):
            record = read_run_record(folder)
            tasks = _folder_tasks(folder, record, aliases, types)
            if tasks:
                name, revision, dim = _identify(folder, root)
                found.append(
                    ModelResults(
                        name,
                        revision,
                        folder,
                        dim,
                        tasks,
                        protocol=_protocol_of(folder, record, tasks.values()),
                        data=_data_origin(record),
                        variant=_variant(record),
                        asked_as=_asked_as(record),
                        baseline=record.get("kind") == LEXICAL_KIND,
                        verification=_verification(record, tasks.values()),
                    )
                )
    return found


def refuse_unverified(results: Iterable[ModelResults], allow: bool) -> None:
    """Stop, in one line, at a folder of cmteb's results whose run record is missing or damaged: nothing vouches
    for its scores (`--allow-unverified` shows them, marked so)."""
    for found in results:
        if found.verification == UNVERIFIED and not allow:
            raise CmtebError(
                f"{found.folder} holds cmteb results without an intact run record ({RUN_RECORD} missing or "
                "damaged), so nothing vouches for its scores: rerun the tasks into a fresh --output-dir, or pass "
                "--allow-unverified to show them marked unverified"
            )


def result_file_score(protocol: Protocol, spec: TaskSpec, path: Path) -> float:
    """A result file's score by the protocol's metric and split rule: the number every table shows for it."""
    parsed = parse_result_file(path)
    value = protocol.task_score(spec, parsed.splits) if parsed is not None else None
    return float("nan") if value is None else value
