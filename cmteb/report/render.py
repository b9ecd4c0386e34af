"""Write leaderboard tables as Markdown, CSV, one self-contained HTML page, and a PNG chart."""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from pathlib import Path

from cmteb.errors import CmtebError
from cmteb.io import atomic_write_bytes, atomic_write_text
from cmteb.report.leaderboard import PUBLISHED, Row, Table, category_values
from cmteb.tasks.registry import TASK_TYPES

FORMATS = ("md", "csv", "html", "png")
LABEL_COLUMNS = ("Model", "Source", "Protocol", "")
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7")


def to_markdown(tables: Sequence[Table]) -> str:
    """All tables, each with its title and caption, as Markdown."""
    parts = []
    for t in tables:
        # disable_numparse: keep "100.00" and "+1.20" as written.
        align = ["left" if c in LABEL_COLUMNS else "right" for c in t.frame.columns]
        body = t.frame.to_markdown(index=False, disable_numparse=True, colalign=align)
        parts.append(f"## {t.title}\n\n{t.caption}\n\n{body}\n")
    return "\n".join(parts)


def chart_series(rows: Sequence[Row], limit: int = 8) -> list[tuple[str, list[float | None]]]:
    """(label, category values) for the chart: measured rows first, then published, at most `limit`."""
    ordered = [r for r in rows if r.source != PUBLISHED] + [r for r in rows if r.source == PUBLISHED]
    series = []
    for row in ordered:
        values = category_values(row)
        points = [values.get(kind) for kind in TASK_TYPES]
        if any(v is not None for v in points):
            label = f"{row.name} ({row.source}, {row.protocol})"
            series.append((label, points))
    return series[:limit]


def bar_chart_svg(series: Sequence[tuple[str, list[float | None]]], width: int = 900, height: int = 320) -> str:
    """A grouped bar chart of category scores per model, as inline SVG (no script, no network)."""
    left, bottom, top = 40, 60, 20
    plot_w, plot_h = width - left - 10, height - bottom - top
    group_w = plot_w / len(TASK_TYPES)
    bar_w = max(2.0, (group_w - 10) / max(1, len(series)))
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 20 * len(series)}" '
        'role="img" aria-label="category scores per model" font-family="sans-serif" font-size="11">'
    ]
    for tick in range(0, 101, 20):
        y = top + plot_h * (1 - tick / 100)
        out.append(f'<line x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{tick}</text>')
    for g, kind in enumerate(TASK_TYPES):
        x0 = left + g * group_w + 5
        for s, (label, values) in enumerate(series):
            value = values[g]
            if value is None:
                continue
            h = plot_h * value / 100
            out.append(
                f'<rect x="{x0 + s * bar_w:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w - 1:.1f}" '
                f'height="{h:.1f}" fill="{PALETTE[s % len(PALETTE)]}"><title>{html.escape(label)}: '
                f"{kind} {value:.2f}</title></rect>"
            )
        out.append(
            f'<text x="{x0 + (group_w - 10) / 2:.1f}" y="{top + plot_h + 16}" text-anchor="middle">{kind}</text>'
        )
    for s, (label, _) in enumerate(series):
        y = top + plot_h + 36 + 20 * s
        out.append(f'<rect x="{left}" y="{y - 10}" width="12" height="12" fill="{PALETTE[s % len(PALETTE)]}"/>')
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
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 2em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th { background: #f3f3f3; cursor: pointer; }
td:nth-child(-n+3), th:nth-child(-n+3) { text-align: left; }
tr.published td { color: #666; font-style: italic; }
p.caption { max-width: 70em; color: #444; }
"""


def _table_html(table: Table) -> str:
    """A sortable HTML table; published rows carry a class that sets them apart."""
    frame = table.frame
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
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
    """One self-contained page: sortable tables (click a header) and a bar chart of category scores."""
    sections = [f"<h2>Category scores</h2>\n{bar_chart_svg(chart_series(rows))}"]
    for t in tables:
        sections.append(
            f'<h2 id="{t.key}">{html.escape(t.title)}</h2>\n<p class="caption">{html.escape(t.caption)}</p>\n'
            f"{_table_html(t)}"
        )
    body = "\n".join(sections)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>C-MTEB leaderboard</title>\n'
        f"<style>{_STYLE}</style>\n</head>\n<body>\n<h1>C-MTEB leaderboard</h1>\n{body}\n"
        f"<script>{_SORT_SCRIPT}</script>\n</body>\n</html>\n"
    )


def write_png(rows: Sequence[Row], path: Path) -> None:
    """The category chart as a PNG (matplotlib), for READMEs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = chart_series(rows)
    fig, ax = plt.subplots(figsize=(10, 4.5), dpi=120)
    width = 0.8 / max(1, len(series))
    for s, (label, values) in enumerate(series):
        xs = [g + s * width for g, v in enumerate(values) if v is not None]
        ys = [v for v in values if v is not None]
        ax.bar(xs, ys, width=width, label=label, color=PALETTE[s % len(PALETTE)])
    ax.set_xticks([g + 0.4 - width / 2 for g in range(len(TASK_TYPES))], TASK_TYPES, fontsize=8)
    ax.set_ylim(0, 100)
    ax.set_ylabel("score")
    ax.set_title("C-MTEB category scores")
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
        atomic_write_text(out_dir / "leaderboard.md", to_markdown(tables))
        written.append(out_dir / "leaderboard.md")
    if "csv" in formats:
        for t in tables:
            atomic_write_text(out_dir / f"{t.key}.csv", t.frame.to_csv(index=False))
            written.append(out_dir / f"{t.key}.csv")
    if "html" in formats:
        atomic_write_text(out_dir / "leaderboard.html", to_html(tables, rows))
        written.append(out_dir / "leaderboard.html")
    if "png" in formats:
        write_png(rows, out_dir / "categories.png")
        written.append(out_dir / "categories.png")
    return written
