"""The local executor: ``--jobs N`` worker processes on this machine.

Each worker is a spawned process that watches the builder (it exits at once when the
builder dies: see :func:`~btbuild.execution.liveness.start_worker`), then loads the
workspace once (:func:`init_worker`) and runs the groups it is given (:func:`work`).
A worker that dies (``os._exit`` in calculation code, a crash, the OOM killer) breaks the
pool: a new one takes the next tasks, and the tasks that were out run again, each cell
alone in a process of its own (see :mod:`btbuild.execution.dispatch`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from concurrent.futures import BrokenExecutor, Future, ProcessPoolExecutor
from contextlib import contextmanager
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from btbuild.execution.dispatch import Submit
from btbuild.execution.environment import Environment, static_hashes
from btbuild.execution.liveness import start_worker
from btbuild.execution.runner import run_group
from btbuild.execution.tasks import CellOutcome, GroupTask

_WORKER: dict[str, Any] = {}


@contextmanager
def local_pool(
    root: Path, product_lines: tuple[str, ...], jobs: int, retried: Sequence[GroupTask]
) -> Iterator[Submit]:
    """``submit(group) -> future`` over ``jobs`` local worker processes; a task in
    ``retried`` (its worker died before) runs alone, in a process of its own."""
    pools: list[ProcessPoolExecutor] = []

    def fresh(workers: int) -> ProcessPoolExecutor:
        pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=get_context("spawn"),
            initializer=start_worker,  # watches this process, then runs init_worker
            initargs=(os.getpid(), f"{__name__}:init_worker", str(root), product_lines),
        )
        pools.append(pool)
        return pool

    main = [fresh(jobs)]

    def submit(group: GroupTask) -> Future[list[CellOutcome]]:
        if any(seen is group for seen in retried):  # alone, in its own process
            return fresh(1).submit(work, group)
        try:
            return main[0].submit(work, group)
        except BrokenExecutor:
            main[0] = fresh(jobs)
            return main[0].submit(work, group)

    try:
        yield submit
    finally:
        for pool in pools:
            pool.shutdown(wait=True, cancel_futures=True)


def init_worker(root: str, product_lines: tuple[str, ...]) -> None:
    """A worker process's set-up: interrupts as a flag, what calculations print to stderr,
    the workspace loaded once into the environment :func:`work` runs groups in."""
    from btbuild.execution.guard import install_interrupt_flag, stdout_to_stderr_fd
    from btbuild.session import Session

    install_interrupt_flag()
    stdout_to_stderr_fd()
    session = Session(Path(root), product_lines=product_lines)
    _WORKER["env"] = Environment(
        session.workspace, session.plugins, session.backend, static_hashes(session)
    )


def work(group: GroupTask) -> list[CellOutcome]:
    """Run one group in this worker process (after :func:`init_worker`)."""
    return run_group(_WORKER["env"], group)
