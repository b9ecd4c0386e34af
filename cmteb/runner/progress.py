"""Progress display for long runs: one bar for the tasks, one for the current task's texts and phase.

A terminal gets live bars; a log (stderr not a terminal: CI, `make demo` piped) gets one line as each task
starts and as it turns from encoding to scoring, so no step of more than a few seconds passes in silence.
"""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class RunProgress:
    """Bars on stderr: `task k of n <name>` with an ETA, and the texts encoded for it, labelled with what the
    task is doing (encoding, or scoring once its texts are encoded: mteb's k-means, classifiers, search)."""

    def __init__(self, n_tasks: int, *, enabled: bool = True, console: Console | None = None) -> None:
        self.enabled = enabled
        console = console or Console(stderr=True)
        self._log = console if enabled and not console.is_terminal else None  # lines instead of live bars
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=not enabled or self._log is not None,
            transient=False,
        )
        self._tasks_bar: TaskID | None = None
        self._texts_bar: TaskID | None = None
        self._n_tasks = n_tasks
        self._task = ""
        self._phase = ""
        self._said: set[str] = set()  # phases of the current task a log has been told (each once)

    def __enter__(self) -> RunProgress:
        self._progress.__enter__()
        self._tasks_bar = self._progress.add_task("tasks", total=self._n_tasks)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._progress.__exit__(exc_type, exc, tb)

    def loading_data(self, k: int, n: int, name: str) -> None:
        """Show that the data of task `name` (`k` of the `n` to evaluate) is being loaded and checked."""
        self._say(f"data {k} of {n} {name}")
        self._progress.update(self._tasks_bar, description=f"data {k} of {n} {name}")

    def start_task(self, k: int, name: str) -> None:
        """Show that task `k` (1-based) called `name` is running."""
        self._task, self._phase, self._said = name, "", set()
        self._say(f"task {k} of {self._n_tasks} {name}")
        self._progress.update(self._tasks_bar, description=f"task {k} of {self._n_tasks} {name}")
        if self._texts_bar is not None:
            self._progress.remove_task(self._texts_bar)
        self._texts_bar = self._progress.add_task(f"  {name}: scoring", total=0)

    def add_texts(self, n: int) -> None:
        """`n` more texts are about to be encoded for the current task."""
        if self._texts_bar is not None:
            total = (self._progress.tasks[self._texts_bar_index()].total or 0) + n
            self._progress.update(self._texts_bar, total=total)
            self._set_phase("encoding", f"{total} texts")

    def texts_done(self, n: int) -> None:
        """`n` texts of the current task were encoded; once all are, the task is scoring."""
        if self._texts_bar is not None:
            self._progress.advance(self._texts_bar, n)
            bar = self._progress.tasks[self._texts_bar_index()]
            if bar.total and bar.completed >= bar.total:
                self._set_phase("scoring", "")

    def _set_phase(self, phase: str, detail: str) -> None:
        if phase != self._phase:
            self._phase = phase
            self._progress.update(self._texts_bar, description=f"  {self._task}: {phase}")  # type: ignore[arg-type]
            if phase not in self._said:  # a log hears each phase once: mteb encodes a task in several calls
                self._said.add(phase)
                self._say(f"  {self._task}: {phase}" + (f" {detail}" if detail else ""))

    def _say(self, line: str) -> None:
        """One line in a log (nothing on a terminal, where the bars say it)."""
        if self._log is not None:
            self._log.print(line, highlight=False, soft_wrap=True)

    def finish_task(self) -> None:
        """The current task is done."""
        self._progress.advance(self._tasks_bar, 1)

    def _texts_bar_index(self) -> int:
        return next(i for i, t in enumerate(self._progress.tasks) if t.id == self._texts_bar)
