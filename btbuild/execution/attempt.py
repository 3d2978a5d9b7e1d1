"""One attempt at a cell: its lease, taken and given back.

An attempt starts by taking the cell's lease (:func:`take_lease`); it ends committed or
aborted (:mod:`btbuild.execution.finish`), or given back as it was (:func:`release`: an
interruption, nothing counted) or failed without counting (:func:`give_back_damaged`: an
input is damaged).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from btbuild.errors import DamagedResult, ResultMovedOn
from btbuild.execution.context import Context
from btbuild.execution.environment import Environment
from btbuild.execution.liveness import is_dead_local_owner
from btbuild.execution.loader import Process
from btbuild.execution.tasks import CellOutcome, CellTask
from btbuild.plugins.validators import ResultValidator
from btbuild.storage.base import ResultWriter
from btbuild.storage.records import (
    COMMITTED,
    DEAD_LETTER,
    FAILED,
    RUNNING,
    CellRecord,
    Lease,
    RunRecord,
)
from btbuild.storage.streamed import StreamedResult
from btbuild.vocabulary import Reason, Status
from btbuild.workspace.model import Target

# a cell is run again under an equal input key for these reasons (else: someone committed it)
RERUN_EQUAL_KEY = (Reason.FORCED, Reason.DAMAGED, Reason.COSMETIC_RECHECK)


@dataclass
class Attempt:
    """One attempt at a cell: what its commit (or abort) needs."""

    task: CellTask
    target: Target
    lease: Lease
    writer: ResultWriter
    validators: list[ResultValidator]
    started: float
    processed: int = 0
    failures: int = 0
    first_error: str | None = None
    phases: dict[str, float] = field(default_factory=dict)
    # a fused cell's abort waits for its deps' commits (btbuild/execution/fused.py)
    hold: Callable[[str, bool], CellOutcome] | None = None
    # (root source, day) -> the fingerprint of the data this attempt read, taken when it read
    # it: the commit compares them with the plan's (Environment.roots_moved)
    root_stamps: dict[tuple[str, date], str | None] = field(default_factory=dict)


@dataclass(kw_only=True)
class CellRun(Attempt):
    """The state of one cell while its group runs its calculation."""

    process: Process
    ctx: Context
    universe: tuple[int, ...] = ()  # stream indices whose users this cell processes
    today: tuple[tuple[str, int], ...] = ()  # (source, stream index)
    spec: int = 0  # which of its pass's distinct ``today`` lists it is (UserPass.todays)
    observing: list[ResultValidator] = field(default_factory=list)  # validators not settled
    plain: bool = False  # reads no look-back day and no previous value (UserPass.wire)
    history: tuple[tuple[str, int, int], ...] = ()  # (source, days_ago, stream index)
    user_deps: tuple[tuple[str, int], ...] = ()  # (dep name, stream index)
    user_history: tuple[tuple[str, int, int], ...] = ()  # (dep name, days ago, stream index)
    previous_index: int | None = None
    segment: tuple[int, Any] | None = None  # (stream index of the segment source, accepts)
    streamed: tuple[StreamedResult, ...] = ()  # per_user deps of a per_date cell, read lazily
    done: CellOutcome | None = None
    isolate: bool = False  # its calculation changes inputs in place: it gets its own copies


def take_lease(env: Environment, cell: CellTask, store: str) -> Lease | CellOutcome:
    """Take the lease of the cell stored as ``store``; an outcome when it cannot or need not run."""
    settings = env.workspace.execution
    iso = cell.day.isoformat()
    lease = env.backend.acquire(store, iso, env.owner, settings.lease_seconds)
    if lease is None:
        holder = env.backend.get_cell(store, iso)
        if holder is not None and holder.lease_owner and is_dead_local_owner(holder.lease_owner):
            lease = env.backend.acquire(
                store, iso, env.owner, settings.lease_seconds, dead_owners=(holder.lease_owner,)
            )
    if lease is None:
        return CellOutcome(
            cell.name,
            cell.day,
            Status.BLOCKED,
            Reason.LEASED,
            error="another builder holds its lease",
        )
    try:
        return _leased(env, cell, store, lease)
    except BaseException:  # Ctrl-C or a worker's SIGTERM right after acquiring: as it was
        release_lease(env, lease)
        raise


def _leased(env: Environment, cell: CellTask, store: str, lease: Lease) -> Lease | CellOutcome:
    previous = lease.previous  # a zombie's leftovers were dropped by acquire
    if previous is not None and previous.status == RUNNING and previous.lease_owner:
        log_takeover(env, cell, store, previous)
    if (
        previous is not None
        and previous.status == COMMITTED
        and previous.composite_hash == cell.key
        and cell.reason not in RERUN_EQUAL_KEY
        and (store == cell.name or not env.backend.check_results([store], [lease.date]))
    ):
        # someone else committed exactly this meanwhile, or an interrupted sharded build
        # left this part: a part is in no plan's integrity check, so it is kept only when
        # its stored result checks out (a damaged one is computed again and replaced)
        env.backend.release(lease)
        return CellOutcome(
            cell.name, cell.day, Status.SKIPPED, Reason.UP_TO_DATE, result_hash=previous.result_hash
        )
    env.heartbeat.hold(lease)
    return lease


def log_takeover(env: Environment, cell: CellTask, store: str, previous: CellRecord) -> None:
    """The run log records that this process took over a dead (or stalled) attempt."""
    now = time.time()
    env.backend.append_run(
        RunRecord(
            run_id=f"takeover/{previous.lease_generation}",
            target=store,
            date=cell.day.isoformat(),
            status="taken_over",
            build_pass=cell.build_pass,
            worker_id=previous.lease_owner or "",
            trigger=cell.reason,
            started=previous.started_at,
            duration=max(0.0, now - previous.started_at),
            error=(
                f"lease of {previous.lease_owner} (expired at {time.strftime('%H:%M:%S', time.gmtime(previous.lease_expires))} UTC) "
                f"taken over by {env.owner} at {time.strftime('%H:%M:%S', time.gmtime(now))} UTC"
            ),
        )
    )


def attempts_of(lease: Lease, key: str) -> int:
    """The attempts made at the cell with the input key ``key``, this one included: failures
    of other inputs (the code, a dep, a root changed since) do not count towards
    ``max_attempts``."""
    previous = lease.previous
    if (
        previous is not None
        and previous.status in (FAILED, DEAD_LETTER)
        and previous.attempt_key not in (None, key)
    ):
        return 1
    return lease.attempts


def release(env: Environment, runs: list[CellRun]) -> None:
    """Undo unfinished attempts: their shards are dropped and each cell is as it was before
    (an interruption is not a failed attempt, so nothing is counted towards max_attempts)."""
    for run in runs:
        release_lease(env, run.lease)


def release_lease(env: Environment, lease: Lease) -> None:
    """Give one lease back as the cell was before it (best effort while stopping: a lease
    that cannot be given back expires)."""
    env.heartbeat.drop(lease)
    with contextlib.suppress(Exception):
        env.backend.release(lease)  # drops the shards written under the lease


def give_back_damaged(
    env: Environment, cells: list[tuple[CellTask, Target, Lease]], exc: DamagedResult
) -> list[CellOutcome]:
    """An input result the plan found intact is damaged now: the cells reading it are given
    back (no attempt counted), the damaged cell is forgotten so the next build rebuilds it,
    and each cell fails this build with the reason (exit 1, never a result built from it).
    An input another builder replaced since the plan (:class:`ResultMovedOn`) is not
    damage: nothing is forgotten and the cells are ``blocked / deps moved``, which the build
    plans again from the cache as it is now."""
    moved = isinstance(exc, ResultMovedOn)  # not damage: planned again (see build.py)
    if exc.target is not None and exc.date is not None and not moved:
        # only the damaged record itself: a result rebuilt meanwhile is never forgotten
        env.backend.forget_result(exc.target, exc.date, generation=exc.generation)
    outcomes = []
    for task, target, lease in cells:
        env.heartbeat.drop(lease)
        with contextlib.suppress(Exception):  # best effort: the lease expires anyway
            env.backend.release(lease)
        if moved:
            outcome = CellOutcome(
                task.name,
                task.day,
                Status.BLOCKED,
                Reason.DEPS_MOVED,
                error=f"{target.label}: {exc}",
            )
        else:
            error = f"{target.label}: an input is damaged: {exc}; the next build rebuilds it"
            outcome = CellOutcome(task.name, task.day, FAILED, task.reason, error=error)
        outcomes.append(outcome)
    return outcomes
