"""The local executor: ``--jobs N`` worker processes on this machine.

Each worker is a spawned process that watches the builder (it exits at once when the
builder dies: see :func:`~btbuild.execution.liveness.start_worker`), then loads the
workspace once (:func:`init_worker`) and runs the groups it is given (:func:`work`).
A worker that dies (``os._exit`` in calculation code, a crash, the OOM killer) breaks the
pool: a new one takes the next tasks, and the tasks that were out run again, each cell
alone in a process of its own (see :mod:`btbuild.execution.dispatch`).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any

from btbuild.execution.executors import Executor, ExecutorRun

if TYPE_CHECKING:  # registered on every plugin load: processes and the runner come when used
    from concurrent.futures import Future, ProcessPoolExecutor

    from btbuild.execution.dispatch import Submit
    from btbuild.execution.environment import Environment
    from btbuild.execution.setup import ExecutionContext
    from btbuild.execution.tasks import CellOutcome, GroupTask

_WORKER: dict[str, Any] = {}  # "env": the Environment of this worker process


class LocalExecutor(Executor):
    """``--executor local`` (the default): groups run inline in the build's process, or
    with ``--jobs N`` > 1 in N worker processes of this machine."""

    name = "local"
    description = "this machine (inline, or --jobs N worker processes)"

    def open(self, run: ExecutorRun) -> AbstractContextManager[Submit] | None:
        if run.jobs == 1:
            return None
        return local_pool(run.context, run.jobs, run.retried)


@contextmanager
def local_pool(
    context: ExecutionContext, jobs: int, retried: Sequence[GroupTask] = ()
) -> Iterator[Submit]:
    """``submit(group) -> future`` over ``jobs`` local worker processes; a task in
    ``retried`` (its worker died before) runs alone, in a process of its own."""
    from concurrent.futures import BrokenExecutor, ProcessPoolExecutor
    from multiprocessing import get_context

    from btbuild.execution.liveness import start_worker

    pools: list[ProcessPoolExecutor] = []
    setup = (context.worker_setup, str(context.root), context.product_lines)

    def fresh(workers: int) -> ProcessPoolExecutor:
        pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=get_context("spawn"),
            initializer=start_worker,  # watches this process, then runs init_worker
            initargs=(os.getpid(), f"{__name__}:init_worker", *setup),
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


def init_worker(setup: str | None, root: str, product_lines: tuple[str, ...]) -> None:
    """A worker process's set-up (run by :func:`~btbuild.execution.liveness.start_worker`,
    once it watches the builder): interrupts as a flag, what calculations print to stderr,
    the workspace loaded once (``setup``: see :func:`~btbuild.execution.setup.worker_context`)
    into the environment :func:`work` runs groups in, and a quick exit (:func:`quick_exit`)."""
    from multiprocessing.util import Finalize

    from btbuild.execution.environment import Environment
    from btbuild.execution.guard import install_interrupt_flag, stdout_to_stderr_fd
    from btbuild.execution.setup import worker_context

    install_interrupt_flag()
    stdout_to_stderr_fd()
    env = _WORKER["env"] = Environment.of(worker_context(setup, root, product_lines))
    # run when the worker loop ends (multiprocessing's exit, before the interpreter's)
    Finalize(None, quick_exit, args=(env,), exitpriority=100)


def quick_exit(env: Environment) -> None:
    """A worker's end, once the pool is shut down: every outcome is sent and committed, so
    the interpreter's teardown is skipped (the heap of a worker that streamed a large group:
    the builder waits for it, 0.2 s at W's size M) and whatever calculation code left
    behind (a thread that never ends, an ``atexit`` handler that hangs), as in the sim's
    child (btbuild/sim/isolated.py)."""
    try:
        env.backend.close()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(0)


def work(group: GroupTask) -> list[CellOutcome]:
    """Run one group in this worker process (after :func:`init_worker`)."""
    from btbuild.execution.runner import run_group

    return run_group(_WORKER["env"], group)
