"""The leaderboard's tables cell by cell, from rows built by hand: names that never read alike, sources, order,
captions, deltas and the page's groups (tests/test_leaderboard.py goes from result files to rendered pages)."""

from __future__ import annotations

from pathlib import Path

import pytest
from results_fixtures import RERANKING_COLUMNS, write_protocol_model

from cmteb.errors import CmtebError
from cmteb.report.leaderboard import (
    MISSING,
    PUBLISHED,
    SAMPLES_SECTION,
    Row,
    build_rows,
    build_tables,
    category_cells,
    category_table,
    cmteb_table,
    delta_table,
    find_row,
    measured_rows,
    overall_rows,
    page_legend,
    published_rows,
    table_groups,
)
from cmteb.report.reference import load_reference
from cmteb.results.files import RUN_RECORD
from cmteb.results.reader import EXTERNAL, UNVERIFIED, ModelResults, collect_results
from cmteb.tasks.protocols import known_tasks, resolve_protocol

CMTEB31 = resolve_protocol("cmteb-31")


def _results(model: str, revision: str | None, folder: Path, protocol: str = "cmteb-31", **kw) -> ModelResults:
    return ModelResults(model, revision, folder, None, {}, protocol=protocol, **kw)


def test_no_two_rows_read_alike(tmp_path):
    out1 = tmp_path / "o1" / "results" / "org__m" / "r1"
    out2 = tmp_path / "o2" / "results" / "org__m" / "r1"
    found = [
        _results("org/m", "r1", out1),
        _results("org/m", "r1", out2),
        _results("org/m", "r2", tmp_path / "x"),
        _results("org/m", "r1", tmp_path / "y", variant={"max_length": 64}),
        _results("org/n", "r1", tmp_path / "n"),
        _results("org/k", None, tmp_path / "k1"),
        _results("org/k", None, tmp_path / "k2"),
        _results("org/n", "r1", tmp_path / "p", protocol="flagembedding-2023"),
        _results("org/j", "r1", tmp_path / "j1"),
        _results("org/j", "r2", tmp_path / "j2"),
    ]
    assert [r.name for r in measured_rows(found)] == [
        f"org/m @ r1 in {tmp_path / 'o1'}",
        f"org/m @ r1 in {tmp_path / 'o2'}",
        "org/m @ r2",
        "org/m @ r1 (max length 64)",
        "org/n",
        f"org/k in {tmp_path / 'k1'}",
        f"org/k in {tmp_path / 'k2'}",
        "org/n",  # another protocol: another table
        "org/j @ r1",
        "org/j @ r2",
    ]


@pytest.mark.parametrize(
    ("facts", "source"),
    [
        ({}, "measured"),
        ({"verification": EXTERNAL}, "measured by another tool"),
        ({"verification": UNVERIFIED}, "unverified"),
        ({"data": "samples"}, "measured on samples"),
        ({"data": "local"}, "measured"),
        ({"baseline": True}, "lexical baseline, measured"),
        (
            {"baseline": True, "data": "samples", "verification": EXTERNAL},
            "lexical baseline, measured by another tool on samples",
        ),
    ],
)
def test_a_rows_source_says_who_vouches_for_it_and_on_what_data(facts, source, tmp_path):
    [row] = measured_rows([ModelResults("org/m", "r1", tmp_path, 768, {}, protocol="cmteb-31", **facts)])
    assert (row.source, row.protocol, row.embedding_dim, row.origin) == (source, "cmteb-31", 768, str(tmp_path))
    assert row.on_samples == (facts.get("data") == "samples")


@pytest.mark.parametrize(("protocol", "points"), [("cmteb-31", 61.23), ("mteb-cmn-v1", 61.234)])
def test_a_rows_scores_are_points_rounded_as_its_protocol_rounds(protocol, points, tmp_path):
    write_protocol_model(tmp_path, "org/m", protocol, value=0.61234)
    [row] = measured_rows(collect_results([tmp_path]))
    spec_names = {t.name for t in resolve_protocol(protocol).all_tasks}
    assert set(row.tasks) == spec_names
    assert all(v == pytest.approx(points, abs=1e-9) for v in row.tasks.values())


def _full(value: float, protocol=CMTEB31) -> dict[str, float]:
    return {t.name: value for t in protocol.tasks}


def _rows() -> list[Row]:
    partial = dict(list(_full(90.0).items())[:5])
    return [
        Row("a", "measured", "cmteb-31", 768, _full(60.0)),
        Row("published-1", PUBLISHED, "cmteb-31", 1024, {}, {"Avg": 64.5, "STS": 50.0}),
        Row("c", "measured", "cmteb-31", None, partial),
        Row("bm25", "lexical baseline, measured", "cmteb-31", None, _full(80.0)),
        Row("b", "measured", "cmteb-31", 512, _full(70.0)),
        Row("published-2", PUBLISHED, "cmteb-31", None, {"ATEC": 40.0}, {"STS": 45.0}),
        Row("published-3", PUBLISHED, "cmteb-31", None, {}, {"Avg": 70.5}),
    ]


def test_the_cmteb_table_orders_complete_rows_by_avg_baselines_last_then_the_published_rows():
    assert [r.name for r in overall_rows(_rows())] == ["b", "a", "c", "bm25", "published-1", "published-3"]
    table = cmteb_table(_rows(), "cmteb-31")
    assert (table.key, table.title) == ("cmteb-cmteb-31", "C-MTEB — cmteb-31")
    cells = table.frame.set_index("Model")
    assert list(table.frame.columns[:4]) == ["Model", "Source", "Protocol", "Embedding dimension"]
    assert cells.loc["b", "Avg"] == "70.00" and cells.loc["b", "STS"] == "70.00"
    assert cells.loc["b", "Embedding dimension"] == "512" and cells.loc["c", "Embedding dimension"] == MISSING
    assert cells.loc["b", "Mean (TaskType)"] == "70.00" and cells.loc["c", "Mean (TaskType)"] == MISSING
    assert cells.loc["c", "Avg"] == "partial: 5 of 31 tasks"
    assert cells.loc["published-1", "Avg"] == "64.50" and cells.loc["published-1", "Retrieval"] == MISSING
    assert cells.loc["published-1", "Mean (TaskType)"] == MISSING
    assert cells.loc["published-1", "Rank (Borda)"] == MISSING  # no task scores: no rank
    # Borda by hand: c wins its 5 tasks, bm25 the other 26; points 4 - rank per task: bm25 88, b 57, a 26, c 15.
    assert [cells.loc[name, "Rank (Borda)"] for name in ("bm25", "b", "a", "c")] == ["1", "2", "3", "4"]
    samples = cmteb_table(_rows(), "cmteb-31", SAMPLES_SECTION)
    assert (samples.key, samples.title) == ("cmteb-cmteb-31-samples", f"C-MTEB — cmteb-31 — {SAMPLES_SECTION}")
    assert table.caption == "" and cmteb_table(_rows()).key == "cmteb"


def test_a_category_table_has_the_categorys_tasks_in_the_seed_order_and_says_how_it_averages():
    reranking = _full(70.0) | {"T2RerankingZh2En": 10.0}
    rows = [Row("b", "measured", "cmteb-31", None, reranking), Row("none", "measured", "cmteb-31", None, {})]
    table = category_table(rows, "Reranking", "cmteb-31")
    assert list(table.frame.columns) == RERANKING_COLUMNS
    assert table.frame["Model"].tolist() == ["b"]  # a row with none of the category's tasks is left out
    assert table.frame["Protocol"].tolist() == ["cmteb-31"] and table.frame["Source"].tolist() == ["measured"]
    empty = category_table(rows[1:], "Reranking", "cmteb-31")
    assert empty.frame.empty and list(empty.frame.columns) == list(table.frame.columns)
    assert table.frame.loc[0, "T2RerankingZh2En"] == "10.00" and table.frame.loc[0, "T2RerankingEn2Zh"] == MISSING
    assert table.frame.loc[0, "Avg"] == "70.00"  # the extra is in no average
    assert table.caption == (
        "Avg: the category mean over its 4 averaged tasks (T2RerankingZh2En, T2RerankingEn2Zh shown apart, in no "
        "average)."
    )
    assert (table.key, table.title) == ("reranking-cmteb-31", "Reranking — cmteb-31")
    sts = category_table(rows, "STS", "cmteb-31")
    assert sts.caption == "Avg: the category mean over its 7 averaged tasks."
    assert category_table(rows, "STS").key == "sts"  # no protocol named: the rules of unrecorded results


def test_published_rows_of_another_setting_get_a_table_of_their_own():
    setting = "FlagEmbedding (2023), fp16"
    rows = [
        Row("b", "measured", "cmteb-31", None, _full(70.0)),
        Row("p", PUBLISHED, "cmteb-31", None, {"ATEC": 40.0}, {"STS": 45.0}, setting=setting),
        Row("q", PUBLISHED, "cmteb-31", None, {"ATEC": 41.0}, {}),
    ]
    own = category_table(rows, "STS", "cmteb-31")
    assert own.frame["Model"].tolist() == ["b", "q"] and own.frame.loc[1, "Avg"] == MISSING
    other = category_table(rows, "STS", "cmteb-31", setting, SAMPLES_SECTION)
    assert other.frame["Model"].tolist() == ["p"] and other.frame.loc[0, "Avg"] == "45.00"
    assert other.frame.loc[0, "ATEC"] == "40.00" and other.caption == f"Avg as {setting} prints it."
    assert other.key == "sts-cmteb-31-flagembedding-2023-fp16-samples"
    assert other.title == f"STS — cmteb-31 — {setting} — {SAMPLES_SECTION}"


def test_find_row_names_the_choices_and_merges_a_published_models_rows():
    rows = [
        Row("m", "measured", "cmteb-31"),
        Row("p", PUBLISHED, "cmteb-31", 1024, {}, {"Avg": 1.0, "STS": 2.0}),
        Row("p", PUBLISHED, "cmteb-31", None, {"ATEC": 3.0}, {"Avg": 9.0}),
    ]
    merged = find_row(rows, "published:p")
    assert (merged.name, merged.source, merged.protocol, merged.embedding_dim) == ("p", PUBLISHED, "cmteb-31", 1024)
    assert merged.tasks == {"ATEC": 3.0} and merged.categories == {"Avg": 1.0, "STS": 2.0}
    assert find_row(rows, "m") is rows[0]
    with pytest.raises(CmtebError) as err:
        find_row(rows, "p")
    assert str(err.value) == "no measured row named 'p': choose from m, published:p"
    with pytest.raises(CmtebError, match=r"^no published row named 'm': choose from m, published:p$"):
        find_row(rows, "published:m")


def test_a_delta_is_candidate_minus_baseline_where_either_has_a_value():
    base = Row("base", "measured", "cmteb-31", None, _full(60.0))
    cand = Row("cand", "measured", "cmteb-31", None, {**_full(62.5), "ATEC": 59.0, "T2RerankingZh2En": 30.0})
    del cand.tasks["T2Retrieval"]
    table = delta_table([base, cand], "cand", "base")
    cells = table.frame.set_index("")
    assert list(table.frame.columns) == ["", "baseline", "candidate", "delta"]
    assert cells.loc["Avg"].tolist() == ["60.00", MISSING, MISSING]  # the candidate's Avg is partial
    assert cells.loc["STS"].tolist() == ["60.00", "62.00", "+2.00"]  # (59.00 + 6 x 62.50) / 7
    assert cells.loc["ATEC"].tolist() == ["60.00", "59.00", "-1.00"]
    assert cells.loc["T2Retrieval"].tolist() == ["60.00", MISSING, MISSING]
    assert cells.loc["T2RerankingZh2En"].tolist() == [MISSING, "30.00", MISSING]
    assert "T2RerankingEn2Zh" not in cells.index  # neither row has it
    sts = {t.name: 60.0 for t in CMTEB31.tasks if t.type == "STS"}
    only_sts = [Row("x", "measured", "cmteb-31", None, sts), Row("y", "measured", "cmteb-31", None, sts)]
    lines = delta_table(only_sts, "y", "x").frame[""].tolist()
    assert lines == ["STS", *[name for name in known_tasks() if name in sts]]  # no line where neither has a value
    assert table.title == "Delta: cand vs base"
    assert table.caption == (
        "cand (measured, cmteb-31) against base (measured, cmteb-31); delta in points. Category values only where "
        "complete."
    )
    same = delta_table([base, Row("c", "measured", "cmteb-31", None, _full(60.0))], "c", "base")
    assert same.frame.set_index("").loc["Avg", "delta"] == "+0.00"
    other = Row("o", "measured", "mteb-cmn-v1", None, _full(60.0))
    assert delta_table([base, other], "o", "base").caption == (
        "o (measured, mteb-cmn-v1) against base (measured, cmteb-31); delta in points. Category values only where "
        "complete. The two rows come from different protocols: differences include protocol effects."
    )


def test_no_delta_between_a_samples_row_and_a_full_data_row():
    full = Row("full", PUBLISHED, "cmteb-31", None, {}, {"Avg": 60.0})
    sampled = Row("tiny", "measured on samples", "cmteb-31", None, _full(60.0), on_samples=True)
    message = (
        "tiny was measured on the bundled samples and full (published) was not: a delta between them says nothing; "
        "compare rows measured on the same data"
    )
    for candidate, baseline in (("tiny", "published:full"), ("published:full", "tiny")):
        with pytest.raises(CmtebError) as err:
            delta_table([full, sampled], candidate, baseline)
        assert str(err.value) == message


def test_groups_put_own_measurements_first_then_samples_then_published_only():
    rows = [
        Row("p", PUBLISHED, "mteb-cmn-v1", None, {}, {"Avg": 1.0}),
        Row("s", "measured on samples", "cmteb-31", on_samples=True),
        Row("x", "measured", "cmteb-31"),
        Row("y", "measured", "flagembedding-2023"),
        Row("q", PUBLISHED, "cmteb-31", None, {}, {"Avg": 2.0}),
    ]
    groups = table_groups(rows)
    assert [(g.protocol, g.section, [r.name for r in g.rows]) for g in groups] == [
        ("cmteb-31", "", ["x", "q"]),
        ("flagembedding-2023", "", ["y"]),
        ("cmteb-31", SAMPLES_SECTION, ["s"]),
        ("mteb-cmn-v1", "", ["p"]),  # the default protocol, but nothing of the user's in it
    ]
    assert [g.key for g in groups] == ["cmteb-31", "flagembedding-2023", "cmteb-31-samples", "mteb-cmn-v1"]
    assert groups[2].title == f"cmteb-31 — {SAMPLES_SECTION}" and groups[0].title == "cmteb-31"
    own_default = table_groups([*rows, Row("z", "measured", "mteb-cmn-v1")])
    assert [g.key for g in own_default][:3] == ["mteb-cmn-v1", "cmteb-31", "flagembedding-2023"]


def test_a_protocols_full_and_samples_rows_get_tables_of_their_own():
    rows = [
        Row("full", "measured", "cmteb-31", None, _full(60.0)),
        Row("tiny", "measured on samples", "cmteb-31", None, _full(70.0), on_samples=True),
    ]
    tables = build_tables(rows)
    keys = [t.key for t in tables]
    assert len(keys) == len(set(keys)) == 2 * 7  # the C-MTEB table and six categories, twice
    sampled = [t for t in tables if t.key.endswith("-samples")]
    assert len(sampled) == 7 and all(t.title.endswith(f" — {SAMPLES_SECTION}") for t in sampled)
    assert all(t.frame["Model"].tolist() == ["tiny"] for t in sampled)


def test_the_legend_names_only_the_sources_and_protocols_present():
    rows = [Row("x", "lexical baseline, measured", "cmteb-31"), Row("p", PUBLISHED, "mteb-cmn-v1")]
    legend = page_legend(rows).split("\n\n")
    assert len(legend) == 4 and legend[0] == (
        "Scores x100. 'partial: k of n tasks': only k of the n tasks an average covers are present; '—': none. "
        "Mean (TaskType): the mean of the category means; Rank (Borda): mteb's leaderboard rank among a table's "
        "rows (each task ranks the rows, a row earns rows − rank points per task it has, ranked by the sum)."
    )
    assert legend[1] == (
        "Sources: published: copied from its source (the seed READMEs, c-mteb's README, the 2023 result files); "
        "measured: result files of a cmteb run, vouched for by its run record; lexical baseline: BM25 and TF-IDF "
        "(`cmteb run --model bm25`), a floor with no trained weights."
    )
    assert legend[2].startswith("Protocol cmteb-31: FlagEmbedding's current ChineseTaskList")
    assert legend[3] == (
        "Protocol mteb-cmn-v1: mteb 2's benchmark MTEB(cmn, v1), the datasets' current repos and pinned revisions. "
        "Metrics: Retrieval nDCG@10, STS cosine Spearman, PairClassification max accuracy, Classification "
        "accuracy, Reranking MAP (map_at_1000), Clustering V-measure. Avg = mean over the 31 tasks; a category = "
        "mean of its tasks; T2RerankingZh2En, T2RerankingEn2Zh are shown apart and are in no average."
    )
    sampled = page_legend([*rows, Row("s", "measured on samples", "cmteb-31", on_samples=True)]).split("\n\n")
    assert len(sampled) == 5 and sampled[2] == (
        f"Tables titled '{SAMPLES_SECTION}' hold rows measured on the bundled samples only: their numbers say "
        "nothing of C-MTEB quality and are never set beside published or full-data rows."
    )
    assert "measured on samples: a cmteb run on the bundled sample data" in sampled[1]


def test_a_row_is_averaged_by_its_own_protocols_tasks():
    """flagembedding-2023 averages 35 tasks; a protocol this version does not know averages as unrecorded
    results do (mteb's 31)."""
    fe = resolve_protocol("flagembedding-2023")
    tasks = _full(60.0, fe)
    tasks.pop(next(iter(tasks)))
    partial = Row("fe", "measured", "flagembedding-2023", None, tasks)
    assert category_cells(partial)["Avg"] == "partial: 34 of 35 tasks"
    full = Row("fe", "measured", "flagembedding-2023", None, _full(60.0, fe))
    assert category_cells(full)["Avg"] == "60.00"
    unknown = Row("old", "measured", "cmteb-0", None, _full(60.0, resolve_protocol("mteb-cmn-v1")))
    assert category_cells(unknown)["Avg"] == "60.00"
    only = [t.name for t in fe.tasks if t.name not in {s.name for s in CMTEB31.all_tasks}]
    assert only, "flagembedding-2023 averages tasks cmteb-31 does not have"
    rows = [full, Row("fe2", "measured", "flagembedding-2023", None, {only[0]: 70.0})]
    ranks = cmteb_table(rows, "flagembedding-2023").frame.set_index("Model")["Rank (Borda)"]
    assert ranks.tolist() == ["1", "2"]  # fe2 earns a point on its one task: it is ranked, below fe
    sts = [t.name for t in fe.all_tasks if t.type == "STS"]
    assert category_table([full], "STS", "flagembedding-2023").frame.columns[3:-1].tolist() == sts


def test_published_rows_keep_their_source_and_unverified_folders_are_refused_by_default(tmp_path):
    reference = load_reference()
    rows = published_rows(reference)
    assert [r.origin for r in rows] == [p.source for p in reference] and all(r.origin for r in rows)
    folder = write_protocol_model(tmp_path, "org/m", "cmteb-31")
    (folder / RUN_RECORD).unlink()
    with pytest.raises(CmtebError, match="without an intact run record"):
        build_rows([tmp_path], with_reference=False)
    [row] = build_rows([tmp_path], with_reference=False, allow_unverified=True)
    assert row.source == "unverified"
