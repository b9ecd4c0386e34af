"""Instructions as data: what text each input of each task gets in front, and where that text comes from.

A source is a file of per-task instructions with its provenance (`cmteb/data/instructions/<id>.yaml`:
repo, file and ref), or the user's `--instructions FILE.json`, or a model's own sentence-transformers
prompts. An entry is a string (the instruction of the task's queries, and, for families that instruct
them, of every text of a task without queries: STS, pair classification, classification, clustering) or a
mapping `{"query": ..., "document": ...}`. A source may give defaults per task type.

A family's `InstructionStyle` says which source it reads, the template an instruction goes into (Qwen3-
Embedding's `Instruct: {instruction}\\nQuery:`, bge-multilingual-gemma2's `<instruct>{instruction}\\n<query>`,
BGE's bare instruction) and whether texts of tasks without queries get it. Documents get one only where an
entry names them.

Every key is checked against the task registry when a run is planned: a key that names no task (FlagEmbedding's
own table says `CMedQAv1` where mteb 2's task is `CMedQAv1-reranking`) is an error naming the closest task,
never an instruction silently dropped.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from cmteb.assets import DATA_DIR
from cmteb.errors import CmtebError
from cmteb.io import read_yaml
from cmteb.tasks.registry import TaskSpec
from cmteb.tasks.types import TYPES

INSTRUCTIONS_DIR = DATA_DIR / "instructions"
#: Entry keys of a mapping entry.
SIDES = ("query", "document")


@dataclass(frozen=True)
class TaskInstructions:
    """The text put in front of each kind of input of one task (None: nothing), and its source."""

    query: str | None = None  # queries of Retrieval and Reranking
    document: str | None = None  # their documents
    text: str | None = None  # every text of the other task types
    source: str = "none"

    def for_input(self, prompt_type: str | None) -> str | None:
        """The prefix of an input mteb encodes with `prompt_type` ("query", "document", or None)."""
        return {"query": self.query, "document": self.document}.get(prompt_type or "", self.text)

    def as_record(self) -> dict[str, Any]:
        """What the run record and `cmteb instructions` show."""
        return {"query": self.query, "document": self.document, "text": self.text, "source": self.source}


@dataclass(frozen=True)
class InstructionSource:
    """Per-task instructions with where they come from."""

    id: str
    tasks: Mapping[str, Any]
    defaults: Mapping[str, Any]  # task type -> entry
    provenance: str

    def entry(self, spec: TaskSpec) -> Any:
        """The task's entry, else its type's default, else None."""
        return self.tasks.get(spec.name, self.defaults.get(spec.type))


@dataclass(frozen=True)
class InstructionStyle:
    """How a family uses instructions (see the module docstring)."""

    source: str | None  # a file id under data/instructions, "sentence-transformers" (the model's prompts), None
    template: str = "{instruction}"
    texts: bool = False  # texts of the task types without queries get the instruction too


def _describe(source: Mapping[str, Any]) -> str:
    return f"{source.get('repo')}: {source.get('file')} at {source.get('ref')}"


@lru_cache(maxsize=16)
def shipped_source(source_id: str) -> InstructionSource:
    """A source shipped under data/instructions."""
    path = INSTRUCTIONS_DIR / f"{source_id}.yaml"
    if not path.is_file():
        raise CmtebError(f"no instruction source {source_id!r} in {INSTRUCTIONS_DIR}")
    data = read_yaml(path)
    return InstructionSource(
        data["id"], data.get("tasks") or {}, data.get("defaults") or {}, _describe(data.get("source") or {})
    )


def user_source(path: Path) -> InstructionSource:
    """`--instructions FILE.json`: task name -> instruction, or -> {"query": ..., "document": ...}."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CmtebError(f"--instructions {path} cannot be read as JSON ({exc}): pass a JSON object") from exc
    if not isinstance(data, dict):
        raise CmtebError(f"--instructions {path} holds a {type(data).__name__}: pass an object of task name -> text")
    for task, entry in data.items():
        if not _valid_entry(entry):
            raise CmtebError(
                f"--instructions {path}: the entry of {task} must be a text or an object with "
                f'"query" and/or "document" texts, got {json.dumps(entry, ensure_ascii=False)[:80]}'
            )
    return InstructionSource("user", data, {}, f"--instructions {path}")


def _valid_entry(entry: Any) -> bool:
    if isinstance(entry, str):
        return True
    return (
        isinstance(entry, dict)
        and set(entry) <= set(SIDES)
        and bool(entry)
        and all(isinstance(v, str) for v in entry.values())
    )


def check_keys(source: InstructionSource, known: Iterable[str]) -> None:
    """Refuse a source whose keys name no registered task (or no task type, for defaults)."""
    names = list(known)
    for key in source.tasks:
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1, cutoff=0.4)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise CmtebError(
                f"instruction source {source.provenance}: {key!r} names no registered task{hint}: fix the key, or "
                "`cmteb tasks` lists the task names"
            )
    for key in source.defaults:
        if key not in TYPES:
            raise CmtebError(f"instruction source {source.provenance}: default for unknown task type {key!r}")


def _templated(style: InstructionStyle, instruction: str | None) -> str | None:
    return style.template.format(instruction=instruction) if instruction else None


def task_instructions(style: InstructionStyle, source: InstructionSource | None, spec: TaskSpec) -> TaskInstructions:
    """What each input of `spec` gets from `source` in `style`."""
    entry = None if source is None else source.entry(spec)
    if entry is None:
        return TaskInstructions()
    searches = TYPES[spec.type].searches
    where = source.provenance  # type: ignore[union-attr]
    if isinstance(entry, str):
        if searches:
            return TaskInstructions(query=_templated(style, entry), source=where)
        return TaskInstructions(text=_templated(style, entry) if style.texts else None, source=where)
    if searches:
        query, document = (_templated(style, entry.get(side)) for side in SIDES)
        return TaskInstructions(query, document, None, where)
    return TaskInstructions(text=_templated(style, entry.get("query")), source=where)


def plan_fingerprint(plan: Mapping[str, TaskInstructions]) -> str:
    """A short hash of every prefix a run uses: the cache and result-store keys change with any of them."""
    data = {task: (i.query, i.document, i.text) for task, i in sorted(plan.items())}
    return hashlib.sha256(json.dumps(data, ensure_ascii=False).encode("utf-8")).hexdigest()[:12]


def _mteb_prompt_name(prompts: Mapping[str, str], name: str, kind: str, prompt_type: str | None) -> str | None:
    """The prompt mteb's sentence-transformers wrapper picks (`mteb.models.abs_encoder.get_prompt_name`): task
    and input kind, task, type and input kind, type, input kind."""
    keys = [f"{name}-{prompt_type}" if prompt_type else None, name]
    keys += [f"{kind}-{prompt_type}" if prompt_type else None, kind, prompt_type]
    return next((key for key in keys if key and key in prompts), None)


def model_prompt_instructions(
    prompts: Mapping[str, str], default_prompt_name: str | None, spec: TaskSpec, provenance: str
) -> TaskInstructions:
    """What a model's own sentence-transformers prompts give each input of `spec`, as mteb's sentence-transformers
    wrapper applies them: its pick (above), else sentence-transformers' `default_prompt_name`."""
    name = spec.run_as or spec.name

    def prefix(prompt_type: str | None) -> str | None:
        chosen = _mteb_prompt_name(prompts, name, spec.type, prompt_type) or default_prompt_name
        return prompts.get(chosen) or None if chosen else None

    if TYPES[spec.type].searches:
        return TaskInstructions(query=prefix("query"), document=prefix("document"), source=provenance)
    return TaskInstructions(text=prefix(None), source=provenance)


@dataclass(frozen=True)
class AskedInstructions:
    """What the user asked of instructions: `--instruction TEXT` (every Retrieval and Reranking query gets TEXT,
    as it is), `--instructions FILE.json` (per task, through the family's template), `--no-instruction`."""

    text: str | None = None
    file: Path | None = None
    none: bool = False

    @property
    def overrides(self) -> bool:
        """Whether the run's instructions are not the model family's own."""
        return self.text is not None or self.file is not None or self.none


def _family_source(style: InstructionStyle, known: list[str]) -> InstructionSource | None:
    if style.source is None or style.source == "sentence-transformers":
        return None
    source = shipped_source(style.source)
    check_keys(source, known)
    return source


def plan_instructions(
    style: InstructionStyle,
    st_prompts: tuple[Mapping[str, str], str | None],
    specs: Iterable[TaskSpec],
    known: list[str],
    asked: AskedInstructions,
) -> dict[str, TaskInstructions]:
    """Per task (under its name and the mteb task it runs as), what each input gets: the family's source, the
    model's own sentence-transformers prompts (`st_prompts`: prompts and default prompt name), or what was
    asked, which wins task by task."""
    family = _family_source(style, known)
    user = user_source(asked.file) if asked.file is not None else None
    if user is not None:
        check_keys(user, known)
    plan: dict[str, TaskInstructions] = {}
    for spec in specs:
        if asked.none:
            chosen = TaskInstructions(source="--no-instruction")
        elif asked.text is not None:
            chosen = (
                TaskInstructions(query=asked.text, source="--instruction")
                if TYPES[spec.type].searches
                else (TaskInstructions(source="--instruction: queries only"))
            )
        elif user is not None and user.entry(spec) is not None:
            chosen = task_instructions(style, user, spec)
        elif style.source == "sentence-transformers":
            prompts, default = st_prompts
            where = "the model's sentence-transformers prompts (config_sentence_transformers.json)"
            chosen = model_prompt_instructions(prompts, default, spec, where)
        else:
            chosen = task_instructions(style, family, spec)
        plan[spec.name] = chosen
        if spec.run_as:
            plan[spec.run_as] = chosen
    return plan
