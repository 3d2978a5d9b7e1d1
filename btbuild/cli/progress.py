"""Build progress: rich bars on a terminal, nothing extra when stdout is not a terminal.

The bars show cells decided out of the plan, the date being worked on, and the user
throughput of the cells that ran (users/s), which is the figure people watch on big builds.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from btbuild.execution.build import CellReport


class Progress:
    def __init__(self, *, enabled: bool = True):
        self.enabled = enabled and sys.stderr.isatty()
        self._progress: Any = None
        self._task: Any = None
        self._users = 0
        self._started = time.perf_counter()

    @contextmanager
    def running(self, total: int) -> Iterator[None]:
        if not self.enabled:
            yield
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as RichProgress

        self._progress = RichProgress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("cells  {task.fields[day]}  {task.fields[rate]}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        with self._progress:
            self._task = self._progress.add_task("building", total=total, day="", rate="")
            yield

    def update(self, cell: CellReport) -> None:
        if self._progress is None:
            return
        self._users += cell.items
        elapsed = max(time.perf_counter() - self._started, 1e-6)
        self._progress.update(
            self._task,
            advance=1,
            day=cell.date.isoformat(),
            rate=f"{self._users / elapsed:,.0f} users/s" if self._users else "",
        )

    def notice(self, line: str) -> None:
        """One line on stderr (above the bars while they run), e.g. waiting for a builder."""
        if self._progress is not None:
            self._progress.console.print(line, markup=False, highlight=False)
        else:
            print(line, file=sys.stderr, flush=True)
