"""Progress display for long runs: one bar for the tasks, one for the texts of the current task."""

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
    """Bars on stderr: `task k of n <name>` with an ETA, and the texts encoded for it."""

    def __init__(self, n_tasks: int, *, enabled: bool = True, console: Console | None = None) -> None:
        self.enabled = enabled
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console or Console(stderr=True),
            disable=not enabled,
            transient=False,
        )
        self._tasks_bar: TaskID | None = None
        self._texts_bar: TaskID | None = None
        self._n_tasks = n_tasks

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
        self._progress.update(self._tasks_bar, description=f"data {k} of {n} {name}")

    def start_task(self, k: int, name: str) -> None:
        """Show that task `k` (1-based) called `name` is running."""
        self._progress.update(self._tasks_bar, description=f"task {k} of {self._n_tasks} {name}")
        if self._texts_bar is not None:
            self._progress.remove_task(self._texts_bar)
        self._texts_bar = self._progress.add_task(f"  {name} texts", total=0)

    def add_texts(self, n: int) -> None:
        """`n` more texts are about to be encoded for the current task."""
        if self._texts_bar is not None:
            total = self._progress.tasks[self._texts_bar_index()].total or 0
            self._progress.update(self._texts_bar, total=total + n)

    def texts_done(self, n: int) -> None:
        """`n` texts of the current task were encoded."""
        if self._texts_bar is not None:
            self._progress.advance(self._texts_bar, n)

    def finish_task(self) -> None:
        """The current task is done."""
        self._progress.advance(self._tasks_bar, 1)

    def _texts_bar_index(self) -> int:
        return next(i for i, t in enumerate(self._progress.tasks) if t.id == self._texts_bar)
