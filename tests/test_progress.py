"""Progress in a log (stderr not a terminal): a line as each task starts and as it turns from encoding to
scoring, each phase once per task, so no long step passes in silence."""

from __future__ import annotations

import io

from rich.console import Console

from cmteb.runner.progress import RunProgress


def test_a_log_gets_a_line_per_task_and_phase():
    out = io.StringIO()
    with RunProgress(2, console=Console(file=out, force_terminal=False, width=200)) as progress:
        progress.loading_data(1, 2, "ATEC")
        progress.start_task(1, "ATEC")
        progress.add_texts(40)
        progress.texts_done(40)
        progress.add_texts(30)  # mteb's second call for the other side of the pairs
        progress.texts_done(30)
        progress.finish_task()
        progress.start_task(2, "T2Retrieval")  # a task whose texts are all cached: scoring only
        progress.finish_task()
    assert out.getvalue().splitlines() == [
        "data 1 of 2 ATEC",
        "task 1 of 2 ATEC",
        "  ATEC: encoding 40 texts",
        "  ATEC: scoring",
        "task 2 of 2 T2Retrieval",
    ]


def test_a_terminal_gets_bars_and_no_lines_and_no_progress_means_nothing():
    terminal, quiet = io.StringIO(), io.StringIO()
    for buffer, enabled, is_terminal in ((terminal, True, True), (quiet, False, False)):
        console = Console(file=buffer, force_terminal=is_terminal, width=100)
        with RunProgress(1, enabled=enabled, console=console) as progress:
            progress.start_task(1, "ATEC")
            progress.finish_task()
    shown = terminal.getvalue()
    assert "task 1 of 1 ATEC" in shown and "ATEC: scoring" in shown and "━" in shown, "live bars"
    assert quiet.getvalue() == ""
