"""Tables of the model families (`cmteb families`) and of a model's per-task instructions (`cmteb
instructions`), from the family table and the instruction plan (data: no model is loaded)."""

from __future__ import annotations

from collections.abc import Mapping

from rich.table import Table

from cmteb.models.families import CROSS_ENCODERS, FAMILIES, SENTENCE_TRANSFORMERS, Family, ModelRecipe
from cmteb.models.instructions import TaskInstructions
from cmteb.tasks.protocols import Protocol


def _shown(text: str | None) -> str:
    """An instruction as a table cell: its escapes visible, never wrapped into several lines unseen."""
    return "—" if text is None else repr(text)[1:-1]


def families_table() -> Table:
    """Every family: what recognises it, how it pools and normalises, its instructions and reference. One row a
    family, its facts as lines, so the table fits a narrow terminal with every family name whole."""
    table = Table(
        title="model families",
        caption="a model's own sentence-transformers files win over its family's",
        show_lines=True,
    )
    table.add_column("family", no_wrap=True)
    table.add_column("how it runs", overflow="fold")
    for family in (*FAMILIES, SENTENCE_TRANSFORMERS, CROSS_ENCODERS):
        table.add_row(family.name, "\n".join(f"{field}: {value}" for field, value in _facts(family)))
    return table


def _facts(family: Family) -> list[tuple[str, str]]:
    recognised = [f"name ~ {family.names}"] if family.names else []
    recognised += [f"model_type {'/'.join(family.architectures)}"] if family.architectures else []
    if family is SENTENCE_TRANSFORMERS:
        recognised = ["modules.json"]
    elif family is CROSS_ENCODERS:
        recognised = ["*ForSequenceClassification, one output"]
    style = family.instructions
    instructions = "—" if style.source is None else f"{style.source}: {_shown(style.template)}"
    if style.source is not None and style.texts:
        instructions += " (queries and texts)"
    embedder = family.kind == "embedder"
    return [
        ("kind", f"{family.kind} ({family.core})"),
        ("recognised by", ", ".join(recognised)),
        ("pooling", family.pooling or ("files" if embedder else "—")),
        ("normalised", ("yes" if family.normalize else "no") if embedder else "—"),
        ("instructions", instructions),
        ("checked against", family.reference),
    ]


def instructions_table(protocol: Protocol, plan: Mapping[str, TaskInstructions], recipe: ModelRecipe) -> Table:
    """Per task of `protocol`, what its queries, documents and other texts get in front, and from where."""
    table = Table(
        title=f"instructions under {protocol.name}",
        caption=f"{recipe.describe()}; template {_shown(recipe.instructions.template)}",
    )
    table.add_column("task", no_wrap=True)  # a name is never cut: it is what --tasks takes
    for column in ("query", "document", "text", "source"):
        table.add_column(column, overflow="fold")
    for spec in protocol.all_tasks:
        given = plan.get(spec.name, TaskInstructions())
        table.add_row(spec.name, _shown(given.query), _shown(given.document), _shown(given.text), given.source)
    return table
