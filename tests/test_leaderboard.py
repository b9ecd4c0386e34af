"""Leaderboard tables from result files: conventions, incomplete rows, reference rows, both JSON shapes."""

from __future__ import annotations

import html
import json
import warnings

import mteb
import pytest
from mteb.cache import ResultCache
from results_fixtures import RERANKING_COLUMNS, write_model

from cmteb.cli import main
from cmteb.errors import CmtebError
from cmteb.report.leaderboard import build_rows, build_tables, category_values, overall_rows
from cmteb.report.render import to_html, to_markdown, write_outputs
from cmteb.results.reader import collect_results
from cmteb.tasks.registry import TASK_TYPES, load_registry

SPECS = load_registry().tasks
CMTEB31 = [t for t in SPECS if t.in_mteb]


def table(tables, key):
    return next(t for t in tables if t.key == key).frame


def test_complete_model_averages_over_tasks_not_categories(tmp_path):
    # Retrieval tasks score 0.9, everything else 0.5: mean over 31 tasks != mean of 6 categories.
    scores = {t.name: {t.metric: 0.9 if t.type == "Retrieval" else 0.5} for t in SPECS}
    write_model(tmp_path, "org/complete", "r1", scores)
    rows = build_rows([tmp_path], with_reference=False)
    main_table = table(build_tables(rows), "cmteb-unrecorded")
    row = main_table.iloc[0]
    assert row["Model"] == "org/complete" and row["Source"] == "measured by another tool"
    assert row["Embedding dimension"] == "512"
    assert row["Retrieval"] == "90.00" and row["STS"] == "50.00"
    assert row["Avg"] == f"{100 * (8 * 0.9 + 23 * 0.5) / 31:.2f}"  # 61.61, not the category mean 56.67
    assert list(main_table.columns[:5]) == ["Model", "Source", "Protocol", "Embedding dimension", "Avg"]


def test_missing_tasks_are_dashes_and_averages_say_how_many(tmp_path):
    scores = {t.name: {t.metric: 0.6} for t in CMTEB31 if t.type == "STS"}
    scores["T2Retrieval"] = {"ndcg_at_10": 0.8}
    write_model(tmp_path, "org/partial", "r1", scores)
    rows = build_rows([tmp_path], with_reference=False)
    tables = build_tables(rows)
    row = table(tables, "cmteb-unrecorded").iloc[0]
    assert row["STS"] == "60.00"
    assert row["Retrieval"] == "partial: 1 of 8 tasks"
    assert row["Clustering"] == "—"
    assert row["Avg"] == "partial: 8 of 31 tasks"  # never a mean that looks comparable with a full run's
    retrieval = table(tables, "retrieval-unrecorded").iloc[0]
    assert retrieval["T2Retrieval"] == "80.00" and retrieval["DuRetrieval"] == "—"
    assert category_values(rows[0])["Avg"] is None, "incomplete rows have no complete average"


def test_published_rows_are_labelled_and_can_be_left_out(tmp_path):
    write_model(tmp_path, "org/m", "r1", {"T2Reranking": {"map_at_1000": 0.7}})
    tables = build_tables(build_rows([tmp_path]))
    main_table = table(tables, "cmteb-flagembedding-2023")
    published = main_table[main_table["Source"] == "published"]
    assert len(published) == 16
    assert published.iloc[0].to_dict() == {
        "Model": "BAAI/bge-large-zh-v1.5",
        "Source": "published",
        "Protocol": "flagembedding-2023",
        "Embedding dimension": "1024",
        "Avg": "64.53",
        "Retrieval": "70.46",
        "STS": "56.25",
        "PairClassification": "81.60",
        "Classification": "69.13",
        "Reranking": "65.84",
        "Clustering": "48.99",
        "Mean (TaskType)": f"{(70.46 + 56.25 + 81.60 + 69.13 + 65.84 + 48.99) / 6:.2f}",
        "Rank (Borda)": "—",  # no per-task scores in this row
    }
    assert set(main_table["Source"]) == {"published"}, "protocols are never mixed in one table"
    assert tables[0].key == "cmteb-unrecorded", "measured rows come first"
    reranking = table(tables, "reranking-flagembedding-2023")
    assert list(reranking.columns) == RERANKING_COLUMNS
    assert "BAAI/bge-reranker-large" not in set(reranking["Model"]), "another setting: a table of its own"
    assert reranking["Model"].is_unique, "no model twice in one table"
    assert (
        "Avg: the category mean over its 4 averaged tasks (T2RerankingZh2En, T2RerankingEn2Zh shown apart"
        in next(t for t in tables if t.key == "reranking-flagembedding-2023").caption
    )
    own = next(t for t in tables if t.key == "reranking-flagembedding-2023-the-flagembedding-readme-reranking-table")
    assert "Avg as the FlagEmbedding README reranking table prints it" in own.caption
    large = own.frame[own.frame["Model"] == "BAAI/bge-reranker-large"].iloc[0]
    assert large["Source"] == "published" and large["T2RerankingZh2En"] == "64.03" and large["Avg"] == "66.09"
    assert own.frame["Model"].is_unique
    # e5-small's MMarcoReranking differs between the two sources: never one column of one table
    e5 = "intfloat/multilingual-e5-small"
    assert reranking.set_index("Model").loc[e5, "MMarcoReranking"] == "24.33"
    assert own.frame.set_index("Model").loc[e5, "MMarcoReranking"] == "29.91"
    alone = build_tables(build_rows([tmp_path], with_reference=False))
    assert [t.key for t in alone if t.key.startswith("cmteb")] == ["cmteb-unrecorded"]


def test_delta_against_a_published_row(tmp_path):
    scores = {t.name: {t.metric: 0.5} for t in SPECS}
    write_model(tmp_path, "org/m", "r1", scores)
    tables = build_tables(build_rows([tmp_path]), delta=("org/m", "published:BAAI/bge-large-zh-v1.5"))
    delta = table(tables, "delta").set_index("")
    assert delta.loc["Avg"].to_dict() == {"baseline": "64.53", "candidate": "50.00", "delta": "-14.53"}
    assert delta.loc["T2RerankingZh2En"].to_dict() == {"baseline": "63.39", "candidate": "50.00", "delta": "-13.39"}
    with pytest.raises(CmtebError, match="no published row named 'nobody'"):
        build_tables(build_rows([tmp_path]), delta=("org/m", "published:nobody"))


def test_mteb1_shape_reads_like_mteb2(tmp_path):
    """FlagEmbedding's C-MTEB scripts wrote mteb 1 JSON in <results>/<model>/<Task>.json."""
    folder = tmp_path / "v1" / "bge-small-zh-v1.5"
    folder.mkdir(parents=True)
    (folder / "Ocnli.json").write_text(
        json.dumps(
            {
                "dataset_revision": None,
                "mteb_dataset_name": "Ocnli",
                "mteb_version": "1.1.1",
                "validation": {"cos_sim": {"accuracy": 0.6, "ap": 0.65}, "max": {"ap": 0.7}, "evaluation_time": 3.2},
            }
        )
    )
    (folder / "T2Reranking.json").write_text(
        json.dumps({"mteb_dataset_name": "T2Reranking", "dev": {"map": 0.66, "mrr": 0.76, "evaluation_time": 9.0}})
    )
    (folder / "ATEC.json").write_text(
        json.dumps({"mteb_dataset_name": "ATEC", "test": {"zh": {"cos_sim": {"pearson": 0.5, "spearman": 0.45}}}})
    )
    [model] = collect_results([tmp_path / "v1"])
    assert model.model == "bge-small-zh-v1.5" and model.revision is None
    assert model.protocol == "unrecorded"  # scored by the registry's metrics: cosine AP for pair classification
    assert model.task_score("Ocnli") == pytest.approx(0.65)
    assert model.task_score("T2Reranking") == pytest.approx(0.66)
    assert model.task_score("ATEC") == pytest.approx(0.45)


def test_reads_results_written_by_mteb_itself(tiny_bert, samples_dir, tmp_path):
    from cmteb.models.adapter import BGEModel
    from cmteb.models.encoder import BGEEncoder
    from cmteb.tasks.build import build_task

    model = BGEModel(BGEEncoder.load(str(tiny_bert), name="test-org/tiny"), instructions={})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = mteb.evaluate(
            model,
            build_task(load_registry().get("ATEC"), samples_dir),
            cache=ResultCache(cache_path=tmp_path),
            show_progress_bar=False,
            encode_kwargs={"show_progress_bar": False},
        ).task_results[0]
    [found] = collect_results([tmp_path / "results"])
    assert found.model == "test-org/tiny" and found.embedding_dim == 32
    assert found.task_score("ATEC") == pytest.approx(result.get_score(), abs=1e-6)


def test_malformed_result_json_is_a_one_line_error(tmp_path, capsys):
    folder = write_model(tmp_path, "org/m", "r1", {"ATEC": {"cosine_spearman": 0.5}})
    (folder / "BQ.json").write_text('{"task_name": "BQ", "scores": ')
    assert main(["leaderboard", "--results", str(tmp_path), "--out", str(tmp_path / "lb")]) == 2
    err = capsys.readouterr().err
    assert "BQ.json is not valid JSON" in err and err.count("\n") == 1
    assert main(["leaderboard", "--results", str(tmp_path / "nowhere")]) == 2


def test_html_is_self_contained_and_png_is_written(tmp_path):
    write_model(tmp_path, "org/m", "r1", {t.name: {t.metric: 0.5} for t in SPECS})
    rows = build_rows([tmp_path])
    tables = build_tables(rows)
    page = to_html(tables, rows)
    assert "<svg" in page and 'id="table-cmteb-unrecorded"' in page and "sortable" in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in page
    assert "<script src" not in page and "<link" not in page
    # C-MTEB table, the reranking table's own setting, the c-mteb and bge-*-zh-v1.5 per-task rows per category
    assert page.count('<tr class="published">') == 16 + 10 + 6 * 13 + 6 * 3
    written = write_outputs(tables, rows, tmp_path / "out", ["md", "csv", "html", "png"])
    for protocol in ("unrecorded", "flagembedding-2023"):  # one chart per protocol
        assert (tmp_path / "out" / f"categories-{protocol}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert {p.name for p in written} >= {
        "leaderboard.md",
        "cmteb-unrecorded.csv",
        "reranking-flagembedding-2023.csv",
        "leaderboard.html",
    }
    assert to_markdown(tables).startswith("## C-MTEB — unrecorded\n")


def test_leaderboard_cli_writes_files(tmp_path, capsys):
    write_model(tmp_path / "res", "org/m", "r1", {"ATEC": {"cosine_spearman": 0.5}})
    assert (
        main(
            ["leaderboard", "--results", str(tmp_path / "res"), "--out", str(tmp_path / "lb"), "--format", "md", "csv"]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "| org/m" in out and "wrote" in out
    assert (tmp_path / "lb" / "leaderboard.md").is_file() and (tmp_path / "lb" / "cmteb-unrecorded.csv").is_file()


def test_the_page_has_one_chart_per_protocol_with_every_row_and_reads_at_1280_px(tmp_path):
    import re

    write_model(tmp_path, "org/m", "r1", {t.name: {t.metric: 0.5} for t in SPECS})
    rows = build_rows([tmp_path])
    page = to_html(build_tables(rows), rows)
    charts = re.findall(r"<h3>protocol ([\w.-]+)</h3>\n<div class=\"scroll chart\">(.*?)</svg>", page, re.S)
    assert [name for name, _ in charts] == ["unrecorded", "flagembedding-2023"]
    for name, svg in charts:
        legend = re.findall(r'<text x="58" y="\d+">([^<]+)</text>', svg)
        expected = [f"{r.name} ({r.source})" for r in overall_rows([r for r in rows if r.protocol == name])]
        assert [html.unescape(t) for t in legend] == expected  # every row of the protocol's C-MTEB table
    published = dict(charts)["flagembedding-2023"]
    bge = re.findall(r"<title>BAAI/bge-large-zh-v1.5 \(published\): (\w+) [\d.]+</title>", published)
    assert bge == list(TASK_TYPES), "a bar for every category the row has"
    assert page.count('<div class="scroll">') == page.count("<table ")  # wide tables scroll in their own box
    # One legend for the page, folded: no table repeats it.
    assert page.count('<details class="caption">') == 1 and page.count("Mean (TaskType): the mean") == 1
    assert "position: sticky" in page
