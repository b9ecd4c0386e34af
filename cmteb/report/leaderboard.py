"""Leaderboard tables from result files: the C-MTEB table, one table per category, deltas.

Everything here reads result files and the published reference rows only: no model, no data.
Scores are shown in points (x100) with two decimals. A model missing tasks shows them as `—`
and its averages as `mean (k/n)`, k of n tasks present: never silently averaged over fewer.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from cmteb.defaults import DEFAULT_PROTOCOL
from cmteb.errors import CmtebError
from cmteb.report.averages import Averages, protocol_averages, task_points
from cmteb.report.ranking import borda_ranks, mean_of_task_types
from cmteb.report.reference import PublishedRow, load_reference
from cmteb.results.files import RESULTS_SUBDIR
from cmteb.results.reader import EXTERNAL, UNVERIFIED, VERIFIED, ModelResults, collect_results, refuse_unverified
from cmteb.tasks.protocols import UNRECORDED, Protocol, known_tasks, load_protocols, resolve_protocol
from cmteb.tasks.registry import TASK_TYPES
from cmteb.tasks.types import metric_label

MISSING = "—"
MEASURED = "measured"
EXTERNAL_SOURCE = "measured by another tool"
PUBLISHED = "published"
#: Task order of the seed's reranking table.
RERANKING_ORDER = (
    "T2Reranking",
    "T2RerankingZh2En",
    "T2RerankingEn2Zh",
    "MMarcoReranking",
    "CMedQAv1-reranking",
    "CMedQAv2-reranking",
)


@dataclass
class Row:
    """One system in the tables: measured (from result files) or published (from a reference)."""

    name: str
    source: str
    protocol: str
    embedding_dim: int | None = None
    tasks: dict[str, float] = field(default_factory=dict)  # points
    categories: dict[str, float] = field(default_factory=dict)  # published category values and "Avg"
    origin: str = ""
    setting: str = ""  # published rows of a source whose setting differs from the protocol's own tables
    on_samples: bool = False  # measured on the bundled sample data: never in a table or chart with other rows


@dataclass(frozen=True)
class Table:
    """A rendered table: a title, a caption that says how it was computed, and the cells."""

    key: str
    title: str
    caption: str
    frame: pd.DataFrame


def _points(value: float) -> str:
    return f"{value:.2f}"


def _output_folder(folder: Path) -> str:
    """The output folder a result folder was written into (`<out>/results/<model>/<revision>`)."""
    return str(folder.parents[2]) if folder.parent.parent.name == RESULTS_SUBDIR else str(folder)


def measured_rows(results: Iterable[ModelResults]) -> list[Row]:
    """Rows for result folders, named so that no two read alike: `@revision` when a model appears more than
    once, its non-default settings (subsample, pooling...), and its output folder when all else is equal."""
    results = list(results)
    counts = Counter((r.model, r.protocol) for r in results)
    labels = []
    for r in results:
        label = f"{r.model} @ {r.revision}" if counts[r.model, r.protocol] > 1 and r.revision else r.model
        labels.append(f"{label} ({r.settings_text})" if r.settings_text else label)
    alike = Counter(zip(labels, (r.protocol for r in results), strict=True))
    rows = []
    for r, label in zip(results, labels, strict=True):
        if alike[label, r.protocol] > 1:
            label = f"{label} in {_output_folder(r.folder)}"
        source = {VERIFIED: MEASURED, EXTERNAL: EXTERNAL_SOURCE, UNVERIFIED: UNVERIFIED}[r.verification]
        source = source if r.data != "samples" else f"{source} on samples"
        if r.baseline:
            source = f"{BASELINE}, {source}"
        protocol = r.resolved
        scores = {name: task_points(protocol, value) for name, value in r.task_scores().items()}
        on_samples = r.data == "samples"
        rows.append(
            Row(label, source, r.protocol, r.embedding_dim, scores, origin=str(r.folder), on_samples=on_samples)  # type: ignore[arg-type]
        )
    return rows


#: How the Source column marks a lexical baseline's row.
BASELINE = "lexical baseline"


def published_rows(reference: Iterable[PublishedRow]) -> list[Row]:
    """Rows for published reference entries."""
    return [
        Row(p.model, PUBLISHED, p.protocol, p.embedding_dim, dict(p.tasks), dict(p.categories), p.source, p.setting)
        for p in reference
    ]


def _protocol(name: str) -> Protocol:
    """The protocol of a row: a known one, else the rules for results that record none."""
    return resolve_protocol(name if name in load_protocols() else UNRECORDED)


def row_averages(row: Row) -> Averages:
    """A measured row's Avg and category means, by its protocol's one averaging rule."""
    return protocol_averages(_protocol(row.protocol), row.tasks)


def category_cells(row: Row) -> dict[str, str]:
    """Avg and category cells of the C-MTEB table for `row`."""
    if row.source == PUBLISHED:
        return {c: _points(row.categories[c]) if c in row.categories else MISSING for c in ("Avg", *TASK_TYPES)}
    averages = row_averages(row)
    return {"Avg": averages.avg.cell(), **{kind: a.cell() for kind, a in averages.categories.items()}}


def category_values(row: Row) -> dict[str, float | None]:
    """Complete category means and Avg (None where incomplete), for sorting, charts and deltas."""
    if row.source == PUBLISHED:
        return {c: row.categories.get(c) for c in ("Avg", *TASK_TYPES)}
    return row_averages(row).values()


def _sorted(rows: list[Row]) -> list[Row]:
    """Measured rows by Avg (complete ones first; lexical baselines last, as the floor), then published rows in
    their published order."""
    measured = [r for r in rows if r.source != PUBLISHED]
    measured.sort(key=lambda r: (r.source.startswith(BASELINE), -(category_values(r)["Avg"] or -math.inf)))
    return measured + [r for r in rows if r.source == PUBLISHED]


def _protocol_caption(protocol: str) -> str:
    known = _protocol(protocol)
    metrics = {t.type: t.metric for t in known.tasks}
    listed = ", ".join(f"{kind} {metric_label(metrics[kind])}" for kind in TASK_TYPES if kind in metrics)
    extras = ", ".join(t.name for t in known.extras)
    return (
        f"Protocol {protocol}: {known.description}. Metrics: {listed}. {known.averaging.text.rstrip('.')}; "
        f"{extras} are shown apart and are in no average."
    )


def overall_rows(rows: Iterable[Row]) -> list[Row]:
    """The rows of the C-MTEB table, by Avg: every measured row, and the published rows that carry an Avg
    (a source's overall table, not its per-category tables)."""
    return _sorted([r for r in rows if r.source != PUBLISHED or "Avg" in r.categories])


def cmteb_table(rows: list[Row], protocol: str = "", section: str = "") -> Table:
    """Model, Source, Protocol, Embedding dimension, Avg and the six categories, as in the seed tables, then
    Mean (TaskType) and Rank (Borda) as mteb's leaderboard has them (over this table's rows)."""
    ordered = overall_rows(rows)
    averaged = [t.name for t in _protocol(protocol).tasks]
    ranks = borda_ranks({r.name: r.tasks for r in ordered if r.tasks}, averaged)
    records = []
    for row in ordered:
        dim = str(row.embedding_dim) if row.embedding_dim else MISSING
        type_mean = mean_of_task_types(category_values(row))
        records.append(
            {
                "Model": row.name,
                "Source": row.source,
                "Protocol": row.protocol,
                "Embedding dimension": dim,
                **category_cells(row),
                "Mean (TaskType)": _points(type_mean) if type_mean is not None else MISSING,
                "Rank (Borda)": str(ranks[row.name]) if row.name in ranks else MISSING,
            }
        )
    title = f"C-MTEB — {protocol}" + (f" — {section}" if section else "")
    key = _key("cmteb", protocol) + ("-samples" if section else "")
    return Table(key, title, "", pd.DataFrame.from_records(records))


def _key(base: str, protocol: str) -> str:
    return f"{base}-{protocol}" if protocol else base


def category_table(rows: list[Row], task_type: str, protocol: str = "", setting: str = "", section: str = "") -> Table:
    """One column per task of `task_type` (the protocol's and its extras) and the category's Avg.

    Measured rows' Avg is the protocol's category mean (its extras are never in it); a published row's
    Avg is the one its source prints. Published rows of another setting (`setting`) get a table of their own.
    """
    known = _protocol(protocol)
    specs = [t for t in known.all_tasks if t.type == task_type]
    if task_type == "Reranking":
        specs.sort(key=lambda t: RERANKING_ORDER.index(t.name) if t.name in RERANKING_ORDER else len(RERANKING_ORDER))
    names = [t.name for t in specs]
    records = []
    for row in _sorted([r for r in rows if r.setting == setting and any(n in r.tasks for n in names)]):
        cells = {n: _points(row.tasks[n]) if n in row.tasks else MISSING for n in names}
        if row.source == PUBLISHED:
            avg = _points(row.categories[task_type]) if task_type in row.categories else MISSING
        else:
            avg = row_averages(row).categories[task_type].cell()
        records.append({"Model": row.name, "Source": row.source, "Protocol": row.protocol, **cells, "Avg": avg})
    averaged = [t.name for t in known.by_type()[task_type]]
    apart = [n for n in names if n not in averaged]
    if setting:
        how = f"Avg as {setting} prints it"
    else:
        how = f"Avg: the category mean over its {len(averaged)} averaged tasks"
        how += f" ({', '.join(apart)} shown apart, in no average)" if apart else ""
    frame = pd.DataFrame.from_records(records, columns=["Model", "Source", "Protocol", *names, "Avg"])
    key = (
        _key(task_type.lower(), protocol) + (f"-{_slug(setting)}" if setting else "") + ("-samples" if section else "")
    )
    title = f"{task_type} — {protocol}" + (f" — {setting}" if setting else "") + (f" — {section}" if section else "")
    return Table(key, title, f"{how}.", frame)


def _slug(text: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in text.lower()).split())


def find_row(rows: list[Row], name: str) -> Row:
    """A row by name; `published:NAME` picks the published row of that model."""
    published = name.startswith("published:")
    wanted = name.removeprefix("published:")
    matches = [r for r in rows if (r.source == PUBLISHED) == published and r.name == wanted]
    if not matches:
        known = sorted({r.name if r.source != PUBLISHED else f"published:{r.name}" for r in rows})
        raise CmtebError(
            f"no {'published' if published else 'measured'} row named {wanted!r}: choose from {', '.join(known)}"
        )
    if published:  # a model can have a categories row and a per-task row: merge them
        merged = Row(wanted, PUBLISHED, matches[0].protocol, matches[0].embedding_dim)
        for m in matches:
            merged.tasks.update(m.tasks)
            merged.categories.update({k: v for k, v in m.categories.items() if k not in merged.categories})
        return merged
    return matches[0]


def delta_table(rows: list[Row], candidate: str, baseline: str) -> Table:
    """Candidate minus baseline, per category (and Avg) and per task where both have a value."""
    cand, base = find_row(rows, candidate), find_row(rows, baseline)
    if cand.on_samples != base.on_samples:
        sampled, other = (cand, base) if cand.on_samples else (base, cand)
        raise CmtebError(
            f"{sampled.name} was measured on the bundled samples and {other.name} ({other.source}) was not: a delta "
            "between them says nothing; compare rows measured on the same data"
        )
    cand_cat, base_cat = category_values(cand), category_values(base)
    records = []
    for key in ("Avg", *TASK_TYPES):
        b, c = base_cat.get(key), cand_cat.get(key)
        if b is not None or c is not None:
            records.append(_delta_record(key, b, c))
    for spec in known_tasks().values():  # every task either row may hold
        b, c = base.tasks.get(spec.name), cand.tasks.get(spec.name)
        if b is not None or c is not None:
            records.append(_delta_record(spec.name, b, c))
    caption = (
        f"{cand.name} ({cand.source}, {cand.protocol}) against {base.name} ({base.source}, {base.protocol}); "
        "delta in points. Category values only where complete."
    )
    if cand.protocol != base.protocol:
        caption += " The two rows come from different protocols: differences include protocol effects."
    return Table("delta", f"Delta: {cand.name} vs {base.name}", caption, pd.DataFrame.from_records(records))


def _delta_record(label: str, base: float | None, cand: float | None) -> dict[str, str]:
    delta = _points(cand - base) if base is not None and cand is not None else MISSING
    if delta != MISSING and not delta.startswith("-"):
        delta = "+" + delta
    return {
        "": label,
        "baseline": _points(base) if base is not None else MISSING,
        "candidate": _points(cand) if cand is not None else MISSING,
        "delta": delta,
    }


def build_rows(
    result_dirs: Sequence[Path], *, with_reference: bool = True, allow_unverified: bool = False
) -> list[Row]:
    """Measured rows from `result_dirs` plus, unless disabled, the published reference rows; a folder of cmteb's
    results without an intact run record is refused unless `allow_unverified`."""
    found = collect_results(result_dirs)
    refuse_unverified(found, allow_unverified)
    rows = measured_rows(found)
    if with_reference:
        rows += published_rows(load_reference())
    return rows


#: The title suffix of the tables and charts of rows measured on the bundled samples.
SAMPLES_SECTION = "measured on the bundled samples, not C-MTEB data"


@dataclass(frozen=True)
class Group:
    """The rows one set of tables (and one chart) shows: one protocol, and either the bundled samples'
    measurements (`section` = SAMPLES_SECTION) or every other row."""

    protocol: str
    section: str
    rows: list[Row]

    @property
    def title(self) -> str:
        """`protocol`, and the section when it is the samples'."""
        return f"{self.protocol} — {self.section}" if self.section else self.protocol

    @property
    def key(self) -> str:
        """A file-name-safe key."""
        return f"{self.protocol}-samples" if self.section else self.protocol


def table_groups(rows: Sequence[Row]) -> list[Group]:
    """Rows by protocol, and by data: rows measured on the bundled samples never share a table or chart with
    published or full-data rows (protocols are never mixed either: one task name can mean other data, splits or
    metrics). Page order: groups with the user's own full-data measurements, then the samples' (what `make
    demo` writes), then published-only groups; the default protocol first within each."""
    groups: dict[tuple[str, str], list[Row]] = {}
    for row in rows:
        groups.setdefault((row.protocol, SAMPLES_SECTION if row.on_samples else ""), []).append(row)

    def order(item: tuple[tuple[str, str], list[Row]]) -> tuple[int, bool]:
        (protocol, section), members = item
        measured = any(r.source != PUBLISHED for r in members)
        return (1 if section else 0 if measured else 2), protocol != DEFAULT_PROTOCOL

    return [Group(protocol, section, members) for (protocol, section), members in sorted(groups.items(), key=order)]


def build_tables(rows: list[Row], delta: tuple[str, str] | None = None) -> list[Table]:
    """Per group (`table_groups`): the C-MTEB table and one table per category that has rows; then an optional
    delta view."""
    tables = []
    for group in table_groups(rows):
        main = cmteb_table(group.rows, group.protocol, group.section)
        if not main.frame.empty:
            tables.append(main)
        settings = ["", *dict.fromkeys(r.setting for r in group.rows if r.setting)]
        for kind in TASK_TYPES:
            for setting in settings:
                table = category_table(group.rows, kind, group.protocol, setting, group.section)
                if not table.frame.empty:
                    tables.append(table)
    if delta is not None:
        tables.append(delta_table(rows, *delta))
    return tables


#: What each Source says, for the page's legend (rows of a lexical baseline add its words to their source).
SOURCE_MEANINGS = {
    PUBLISHED: "copied from its source (the seed READMEs, c-mteb's README, the 2023 result files)",
    MEASURED: "result files of a cmteb run, vouched for by its run record",
    f"{MEASURED} on samples": "a cmteb run on the bundled sample data (a few hand-written items per task)",
    EXTERNAL_SOURCE: "result files without cmteb's run record (mteb's, FlagEmbedding's scripts')",
    UNVERIFIED: "cmteb results whose run record is missing or damaged (shown with --allow-unverified)",
    BASELINE: "BM25 and TF-IDF (`cmteb run --model bm25`), a floor with no trained weights",
}


def page_legend(rows: Sequence[Row]) -> str:
    """What every table of a page shares, said once: units, partial averages, the two mteb columns, the
    sources and protocols present."""
    sources = {part for r in rows for part in r.source.split(", ")}
    lines = [
        "Scores x100. 'partial: k of n tasks': only k of the n tasks an average covers are present; '—': none. "
        "Mean (TaskType): the mean of the category means; Rank (Borda): mteb's leaderboard rank among a table's "
        "rows (each task ranks the rows, a row earns rows − rank points per task it has, ranked by the sum).",
        "Sources: " + "; ".join(f"{s}: {why}" for s, why in SOURCE_MEANINGS.items() if s in sources) + ".",
    ]
    if any(r.on_samples for r in rows):
        lines.append(
            f"Tables titled '{SAMPLES_SECTION}' hold rows measured on the bundled samples only: their numbers "
            "say nothing of C-MTEB quality and are never set beside published or full-data rows."
        )
    lines += [_protocol_caption(p) for p in dict.fromkeys(g.protocol for g in table_groups(rows))]
    return "\n\n".join(lines)
