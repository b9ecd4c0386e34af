"""The leaderboard's Mean (TaskType) and Rank (Borda) against mteb's own leaderboard summary, and rows
measured on the bundled samples kept apart from everything else."""

from __future__ import annotations

import pytest
from mteb.cache import ResultCache
from results_fixtures import write_model, write_protocol_model

from cmteb.cli import main
from cmteb.report.leaderboard import SAMPLES_SECTION, build_rows, build_tables, table_groups
from cmteb.report.render import protocol_charts
from cmteb.tasks.protocols import UNRECORDED, resolve_protocol

#: Files without cmteb's block are read by the rules for unrecorded results (the 31 tasks, their metrics).
PROTOCOL = resolve_protocol(UNRECORDED)


def _scores(seed: int, missing: tuple[str, ...] = ()) -> dict[str, dict[str, float]]:
    """Distinct, tie-free scores per model (and a tie between two models on the first task)."""
    scores = {}
    for k, spec in enumerate(PROTOCOL.tasks):
        value = 0.3 + ((seed * 37 + k * 11) % 53) / 100
        scores[spec.name] = {spec.metric: value if k else 0.5}
    return {name: s for name, s in scores.items() if name not in missing}


def test_mean_of_task_types_and_borda_equal_mtebs_leaderboard(tmp_path):
    # Names mteb's registry knows: its summary keeps only models it has metadata for.
    names = ["BAAI/bge-small-zh-v1.5", "BAAI/bge-large-zh-v1.5", "moka-ai/m3e-small", "moka-ai/m3e-base"]
    partial = names[2]
    models = {
        name: _scores(k, missing=("ATEC", "T2Retrieval") if name == partial else ()) for k, name in enumerate(names)
    }
    for name, scores in models.items():
        write_model(tmp_path / "results", name, "r1", scores)
    # mteb's cache layout is <cache>/results/<model>/<revision>, the folder write_model fills here.
    summary = ResultCache(cache_path=tmp_path).load_results(
        models=list(models), tasks="MTEB(cmn, v1)", include_remote=False
    )
    theirs = summary.get_benchmark_result().set_index("Model")
    assert set(theirs.index) == set(names)
    tables = build_tables(build_rows([tmp_path / "results"], with_reference=False))
    table = next(t for t in tables if t.key.startswith("cmteb"))
    ours = table.frame.set_index("Model")
    for name in models:
        row = theirs.loc[name]
        assert int(ours.loc[name, "Rank (Borda)"]) == int(row["Rank (Borda)"]), name
        mean = row["Mean (TaskType)"]
        if name == partial:  # STS and Retrieval incomplete: no mean on either side
            assert ours.loc[name, "Mean (TaskType)"] == "—" and mean != mean
        else:
            assert float(ours.loc[name, "Mean (TaskType)"]) == pytest.approx(100 * mean, abs=0.005)


def test_sample_rows_never_share_a_table_chart_or_delta_with_others(tmp_path, capsys):
    write_protocol_model(tmp_path / "demo", "cmteb/bm25", "flagembedding-2023", 0.9, data_source="samples")
    write_protocol_model(tmp_path / "full", "org/real", "flagembedding-2023", 0.6, data_source="local")
    rows = build_rows([tmp_path / "demo", tmp_path / "full"])
    groups = table_groups(rows)
    assert [(g.protocol, g.section) for g in groups][:2] == [
        ("flagembedding-2023", ""),  # the user's own full-data rows (beside the published ones) first
        ("flagembedding-2023", SAMPLES_SECTION),
    ]
    for group in groups:
        assert len({r.on_samples for r in group.rows}) == 1, "samples rows alone in their group"
    for table in build_tables(rows):
        sources = set(table.frame["Source"])
        assert sources == {"measured on samples"} or "measured on samples" not in sources, table.title
        assert ("measured on samples" in sources) == (SAMPLES_SECTION in table.title)
    for _, title, series in protocol_charts(rows):
        labels = " ".join(label for label, _ in series)
        assert ("on samples" in labels) == (SAMPLES_SECTION in title) and ("published" in labels) != (
            SAMPLES_SECTION in title
        )
    args = ["leaderboard", "--results", str(tmp_path / "demo"), "--out", str(tmp_path / "board")]
    assert main([*args, "--delta", "cmteb/bm25", "published:BAAI/bge-large-zh-v1.5"]) == 2
    err = capsys.readouterr().err
    assert "cmteb/bm25 was measured on the bundled samples and BAAI/bge-large-zh-v1.5 (published) was not" in err
    assert err.count("\n") == 1


def test_the_newcomers_table_comes_first_and_the_legend_once(tmp_path):
    write_protocol_model(tmp_path / "demo", "moka-ai/m3e-small", "mteb-cmn-v1", 0.5, data_source="samples")
    write_protocol_model(tmp_path / "demo", "cmteb/bm25", "mteb-cmn-v1", 0.4, data_source="samples")
    write_protocol_model(tmp_path / "demo2", "cmteb/bm25", "flagembedding-2023", 0.9, data_source="samples")
    out = tmp_path / "board"
    assert main(["leaderboard", "--results", str(tmp_path / "demo"), str(tmp_path / "demo2"), "--out", str(out),
                 "--format", "md", "html", "png"]) == 0  # fmt: skip
    page = (out / "leaderboard.md").read_text()
    first = page.index("## ")
    assert page[first:].startswith(f"## C-MTEB — mteb-cmn-v1 — {SAMPLES_SECTION}")
    assert page.count("Scores x100") == 1 and page.count("Protocol mteb-cmn-v1:") == 1
    assert {p.name for p in out.iterdir()} >= {
        "leaderboard.md",
        "leaderboard.html",
        "categories-mteb-cmn-v1-samples.png",
    }
