"""Write leaderboard tables as Markdown, CSV, one self-contained HTML page, and a PNG chart."""

from __future__ import annotations

import html
import io
import re
from collections.abc import Sequence
from pathlib import Path

from cmteb.errors import CmtebError
from cmteb.io import atomic_write_bytes, atomic_write_text
from cmteb.report.leaderboard import PUBLISHED, Row, Table, category_values, overall_rows, page_legend, table_groups
from cmteb.tasks.registry import TASK_TYPES

FORMATS = ("md", "csv", "html", "png")
LABEL_COLUMNS = ("Model", "Source", "Protocol", "")
#: Tableau 20: distinct colours for up to 20 rows in one chart.
PALETTE = (
    "#4e79a7", "#a0cbe8", "#f28e2b", "#ffbe7d", "#59a14f", "#8cd17d", "#b6992d", "#f1ce63", "#499894", "#86bcb6",
    "#e15759", "#ff9d9a", "#79706e", "#bab0ac", "#d37295", "#fabfd2", "#b07aa1", "#d4a6c8", "#9d7660", "#d7b5a6",
)  # fmt: skip


def to_markdown(tables: Sequence[Table], legend: str = "") -> str:
    """The page's legend (said once), then every table with its title and its own short note, as Markdown."""
    parts = [f"{legend}\n"] if legend else []
    for t in tables:
        # disable_numparse: keep "100.00" and "+1.20" as written.
        align = ["left" if c in LABEL_COLUMNS else "right" for c in t.frame.columns]
        body = t.frame.to_markdown(index=False, disable_numparse=True, colalign=align)
        note = f"{t.caption}\n\n" if t.caption else ""
        parts.append(f"## {t.title}\n\n{note}{body}\n")
    return "\n".join(parts)


def chart_series(rows: Sequence[Row]) -> list[tuple[str, list[float | None]]]:
    """(label, category values) for one protocol's chart: the rows of its C-MTEB table, in that order."""
    series = []
    for row in overall_rows(rows):
        values = category_values(row)
        points = [values.get(kind) for kind in TASK_TYPES]
        if any(v is not None for v in points):
            series.append((f"{row.name} ({row.source})", points))
    return series


def protocol_charts(rows: Sequence[Row]) -> list[tuple[str, str, list[tuple[str, list[float | None]]]]]:
    """(key, title, series): one chart per table group, in page order: scores of different protocols, and the
    bundled samples' beside anything else, are never set side by side."""
    charts = [(g.key, g.title, chart_series(g.rows)) for g in table_groups(rows)]
    return [chart for chart in charts if chart[2]]


def _color(s: int) -> str:
    return PALETTE[s % len(PALETTE)]


def bar_chart_svg(series: Sequence[tuple[str, list[float | None]]], height: int = 300) -> str:
    """A grouped bar chart of category scores per row, as inline SVG (no script, no network); it widens with
    the number of rows so every bar stays readable, and the page scrolls it sideways if need be."""
    left, bottom, top = 40, 30, 20
    group_w = max(130.0, 9.0 * len(series) + 14)
    width = left + 10 + group_w * len(TASK_TYPES)
    plot_h = height - bottom - top
    bar_w = (group_w - 14) / max(1, len(series))
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height + 18 * len(series) + 10}" '
        'role="img" aria-label="category scores per model" font-family="sans-serif" font-size="11">'
    ]
    for tick in range(0, 101, 20):
        y = top + plot_h * (1 - tick / 100)
        out.append(f'<line x1="{left}" x2="{width - 10:.0f}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{tick}</text>')
    for g, kind in enumerate(TASK_TYPES):
        x0 = left + g * group_w + 7
        for s, (label, values) in enumerate(series):
            if values[g] is None:
                continue
            h = plot_h * values[g] / 100
            out.append(
                f'<rect x="{x0 + s * bar_w:.1f}" y="{top + plot_h - h:.1f}" width="{max(bar_w - 1, 1):.1f}" '
                f'height="{h:.1f}" fill="{_color(s)}">'
                f"<title>{html.escape(label)}: {kind} {values[g]:.2f}</title></rect>"
            )
        out.append(
            f'<text x="{x0 + (group_w - 14) / 2:.1f}" y="{top + plot_h + 16}" text-anchor="middle">{kind}</text>'
        )
    for s, (label, _) in enumerate(series):
        y = height + 18 * s + 4
        out.append(f'<rect x="{left}" y="{y - 10}" width="12" height="12" fill="{_color(s)}"/>')
        out.append(f'<text x="{left + 18}" y="{y}">{html.escape(label)}</text>')
    out.append("</svg>")
    return "\n".join(out)


_SORT_SCRIPT = """
document.querySelectorAll("table.sortable th").forEach(function (th, col) {
  th.addEventListener("click", function () {
    var table = th.closest("table"), body = table.tBodies[0];
    var asc = th.dataset.dir !== "asc"; th.dataset.dir = asc ? "asc" : "desc";
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[col].textContent, y = b.cells[col].textContent;
      var nx = parseFloat(x), ny = parseFloat(y);
      var cmp = (isNaN(nx) || isNaN(ny)) ? x.localeCompare(y) : nx - ny;
      return asc ? cmp : -cmp;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
"""

_STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
div.scroll { overflow-x: auto; max-width: 100%; margin: 0.3em 0 2em; }
table { border-collapse: separate; border-spacing: 0; border-top: 1px solid #ccc; border-left: 1px solid #ccc; }
th, td { border-right: 1px solid #ccc; border-bottom: 1px solid #ccc; padding: 4px 6px; text-align: right; }
th { background: #f3f3f3; cursor: pointer; vertical-align: bottom; max-width: 7em; }
td:nth-child(-n+3), th:nth-child(-n+3) { text-align: left; }
td:first-child, th:first-child { position: sticky; left: 0; z-index: 1; max-width: 20em; min-width: 12em; }
td:first-child { background: #fff; }
tr.published td { color: #666; font-style: italic; }
details.caption { max-width: 70em; color: #444; margin: 0.2em 0; }
details.caption summary { cursor: pointer; }
h3 { margin-bottom: 0; }
"""


def _breakable(name: str) -> str:
    """A column name that may wrap where its words join (T2<wbr>Retrieval, Pair<wbr>Classification)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "<wbr>", html.escape(name))


def _table_html(table: Table) -> str:
    """A sortable HTML table; published rows carry a class that sets them apart."""
    frame = table.frame
    head = "".join(f"<th>{_breakable(str(c))}</th>" for c in frame.columns)
    body = []
    sources = list(frame["Source"]) if "Source" in frame.columns else [None] * len(frame)
    for source, values in zip(sources, frame.itertuples(index=False), strict=True):
        cells = "".join(f"<td>{html.escape(str(v))}</td>" for v in values)
        css = ' class="published"' if source == PUBLISHED else ""
        body.append(f"<tr{css}>{cells}</tr>")
    rows = "\n".join(body)
    return (
        f'<table class="sortable" id="table-{table.key}">\n<thead><tr>{head}</tr></thead>\n'
        f"<tbody>\n{rows}\n</tbody>\n</table>"
    )


def to_html(tables: Sequence[Table], rows: Sequence[Row]) -> str:
    """One self-contained page: a category chart per protocol, then sortable tables (click a header) that
    scroll sideways under a fixed model column, so the page reads at 1280 px."""
    charts = [
        f'<h3>protocol {html.escape(title)}</h3>\n<div class="scroll chart">{bar_chart_svg(series)}</div>'
        for _, title, series in protocol_charts(rows)
    ]
    legend = "".join(f"<p>{html.escape(part)}</p>" for part in page_legend(rows).split("\n\n"))
    sections = [f'<details class="caption"><summary>How to read these tables</summary>{legend}</details>']
    sections.append("<h2>Category scores</h2>\n" + "\n".join(charts))
    for t in tables:
        note = f'<p class="caption">{html.escape(t.caption)}</p>\n' if t.caption else ""
        sections.append(
            f'<h2 id="{t.key}">{html.escape(t.title)}</h2>\n{note}<div class="scroll">{_table_html(t)}</div>'
        )
    body = "\n".join(sections)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>C-MTEB leaderboard</title>\n'
        f"<style>{_STYLE}</style>\n</head>\n<body>\n<h1>C-MTEB leaderboard</h1>\n{body}\n"
        f"<script>{_SORT_SCRIPT}</script>\n</body>\n</html>\n"
    )


def write_png(series: Sequence[tuple[str, list[float | None]]], protocol: str, path: Path) -> None:
    """One group's category chart as a PNG (matplotlib), for READMEs (`protocol`: the group's title)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 4.5 + 0.18 * len(series)), dpi=120)
    width = 0.8 / max(1, len(series))
    for s, (label, values) in enumerate(series):
        xs = [g + s * width for g, v in enumerate(values) if v is not None]
        ys = [v for v in values if v is not None]
        ax.bar(xs, ys, width=width, label=label, color=_color(s))
    ax.set_xticks([g + 0.4 - width / 2 for g in range(len(TASK_TYPES))], TASK_TYPES, fontsize=8)
    ax.set_ylim(0, 100)
    ax.set_ylabel("score")
    ax.set_title(f"C-MTEB category scores, protocol {protocol}")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())


def write_outputs(tables: Sequence[Table], rows: Sequence[Row], out_dir: Path, formats: Sequence[str]) -> list[Path]:
    """Write the chosen formats under `out_dir`; returns the files written."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise CmtebError(f"--out {out_dir} is a file: pass a folder for the leaderboard files (created if missing)")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    if "md" in formats:
        atomic_write_text(out_dir / "leaderboard.md", to_markdown(tables, page_legend(rows)))
        written.append(out_dir / "leaderboard.md")
    if "csv" in formats:
        for t in tables:
            atomic_write_text(out_dir / f"{t.key}.csv", t.frame.to_csv(index=False))
            written.append(out_dir / f"{t.key}.csv")
    if "html" in formats:
        atomic_write_text(out_dir / "leaderboard.html", to_html(tables, rows))
        written.append(out_dir / "leaderboard.html")
    if "png" in formats:
        for key, title, series in protocol_charts(rows):
            write_png(series, title, out_dir / f"categories-{key}.png")
            written.append(out_dir / f"categories-{key}.png")
    return written
