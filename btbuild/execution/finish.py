"""How an attempt at a cell ends: committed (:func:`commit`) or aborted (:func:`abort`).

A commit checks the validators, then compares-and-sets the result hashes of every dep cell
the cell read (:func:`dep_cells`): a dep that moved since the plan refuses the commit
(``deps_moved``: the scheduler plans it again). An abort counts the attempt: a cell that
failed ``max_attempts`` times with the same inputs is dead-lettered. Each attempt leaves one
run-log record (:func:`log_run`).
"""

from __future__ import annotations

import time

from btbuild.analysis.cells import PREVIOUS
from btbuild.errors import DepsMoved, LeaseLost
from btbuild.execution.attempt import Attempt, attempts_of
from btbuild.execution.backoff import retry_note
from btbuild.execution.commits import HOOK_FAILED, after_commit, previous_hash
from btbuild.execution.environment import Environment
from btbuild.execution.fresh import run_fresh
from btbuild.execution.tasks import CellOutcome, CellTask, GroupTask
from btbuild.storage.base import ResultWriter
from btbuild.storage.records import (
    COMMITTED,
    DEAD_LETTER,
    FAILED,
    CellRecord,
    Lease,
    RunRecord,
)
from btbuild.vocabulary import Reason, Status


def abort(
    env: Environment,
    group: GroupTask,
    cell: CellTask,
    lease: Lease,
    writer: ResultWriter,
    error: str,
    started: float,
    *,
    items: int = 0,
    failures: int = 0,
    phases: dict[str, float] | None = None,
) -> CellOutcome:
    """End a failed attempt: its shards dropped, the attempt counted (dead-lettered at
    ``max_attempts``), the run logged."""
    env.heartbeat.drop(lease)
    max_attempts = env.workspace.execution.max_attempts
    attempts = attempts_of(lease, cell.key)
    status = DEAD_LETTER if attempts >= max_attempts else FAILED
    if status == DEAD_LETTER:
        error = f"{error} (attempt {attempts} of {max_attempts}: dead-lettered)"
        stored = error
    else:  # status and explain show when the retry is due (btbuild/execution/backoff.py)
        backoff = env.workspace.execution.retry_backoff
        stored = f"{error} {retry_note(attempts, max_attempts, backoff)}"
    if writer.abort(stored, status=status) is not None:  # failures belong to these inputs
        env.backend.put_cell_status(
            lease.target, lease.date, status, attempts=attempts, attempt_key=cell.key
        )
    duration = time.perf_counter() - started
    log_run(env, group, cell, lease, status, duration, phases or {}, error)
    return CellOutcome(
        cell.name,
        cell.day,
        status,
        cell.reason,
        items=items,
        failures=failures,
        duration=duration,
        error=error,
        phases=phases or {},
    )


def abort_run(
    env: Environment, group: GroupTask, run: Attempt, message: str, *, phases: bool = False
) -> CellOutcome:
    """:func:`abort` for a started attempt: its users processed and failed are reported
    (and its phases, with ``phases``). A fused cell's abort is held until its key is
    complete (see btbuild/execution/fused.py)."""
    if run.hold is not None:
        return run.hold(message, phases)
    return abort(
        env,
        group,
        run.task,
        run.lease,
        run.writer,
        message,
        run.started,
        items=run.processed,
        failures=run.failures,
        phases=run.phases if phases else None,
    )


def commit(env: Environment, group: GroupTask, run: Attempt) -> CellOutcome:
    """Commit the attempt's result (after its validators): ``ran``, or ``blocked`` when its
    lease was lost or a dep moved since the plan."""
    cell = run.task
    problems = [problem for validator in run.validators for problem in validator.finish()]
    if problems:
        message = f"{run.target.label}: check failed: {'; '.join(problems)}"
        return abort_run(env, group, run, message, phases=True)
    variables = env.environ_changed()
    if variables:  # read by calculations after the change, under keys hashed before it
        message = (
            f"{run.target.label}: environment variables changed while its group ran "
            f"({', '.join(variables)}): calculations must not set them (the ones reading them "
            "would compute with or without the change); not committed"
        )
        return abort_run(env, group, run, message, phases=True)
    if not group.combine and env.loader.state_problem(run.target) is not None:
        # it ran on module state earlier cells left: run again on a fresh import (fresh.py)
        return run_fresh(env, group, run)
    moved = env.roots_moved(run.target, cell, run.root_stamps)
    if moved:  # re-ingested while it ran: planned again with the data as it is now
        env.heartbeat.drop(run.lease)
        env.backend.release(run.lease)  # drops the shards written under the lease
        changed = ", ".join(moved)
        error = f"{run.target.label}: root data of {changed} changed while it ran"
        return CellOutcome(cell.name, cell.day, Status.BLOCKED, Reason.DEPS_MOVED, error=error)
    commit_start = time.perf_counter()
    try:
        record = run.writer.commit(
            composite_hash=cell.key,
            components=dict(cell.components, static=cell.static),
            code_hash=cell.code_hash,
            sim_hash=cell.sim_hash,
            dep_results=dict(cell.dep_results),
            root_fingerprints=dict(cell.root_fingerprints),
            category=run.target.package,
            expect_deps=dep_cells(env, cell),
            # the alert is stored with the commit (a part of a sharded cell is not a cell)
            alert=run.target.alert and (group.shards == 1 or group.combine),
        )
    except LeaseLost as exc:
        return CellOutcome(cell.name, cell.day, Status.BLOCKED, Reason.LEASED, error=str(exc))
    except DepsMoved as exc:  # the scheduler plans the cell again from the cache as it is now
        return CellOutcome(cell.name, cell.day, Status.BLOCKED, Reason.DEPS_MOVED, error=str(exc))
    finally:
        env.heartbeat.drop(run.lease)
    run.phases["commit"] = time.perf_counter() - commit_start
    return _committed(env, group, run, record)


def _committed(env: Environment, group: GroupTask, run: Attempt, record: CellRecord) -> CellOutcome:
    """After the commit: the hooks (of a cell, not of a part), the run log, the outcome."""
    cell = run.task
    hooks = None
    if group.shards == 1 or group.combine:  # a part of a sharded cell is not a cell
        hooks = after_commit(env, run.target, cell.day, record, previous_hash(run.lease.previous))
    duration = time.perf_counter() - run.started
    error = hooks
    if run.failures:
        error = f"{run.failures} of {run.processed} users failed (within max_failure_rate); first: {run.first_error}"
        error = f"{error}; {hooks}" if hooks else error
    log_run(env, group, cell, run.lease, COMMITTED, duration, run.phases, error, record)
    return CellOutcome(
        cell.name,
        cell.day,
        Status.RAN,
        cell.reason if hooks is None else HOOK_FAILED,
        result_hash=record.result_hash,
        items=record.item_count,
        failures=run.failures,
        duration=duration,
        error=error,
        phases=run.phases,
    )


def dep_cells(env: Environment, cell: CellTask) -> dict[tuple[str, str], str]:
    """(dep target, ISO date) -> the result hash the cell was computed from, for every dep
    cell it read (its own previous day too): what the commit compares and sets."""
    expected = {}
    for label, result_hash in cell.dep_results.items():
        if label == PREVIOUS:
            if cell.previous_date is not None:
                expected[(cell.name, cell.previous_date.isoformat())] = result_hash
            continue
        dep_label, at, back = label.partition("@-")  # dep_lookback: an earlier result
        name = env.by_label[dep_label].name
        day = cell.dep_dates.get(f"{name}@-{back}" if at else name)
        if day is not None:  # None: a look-back day without a result (nothing to compare)
            expected[(name, day.isoformat())] = result_hash
    return expected


def log_run(
    env: Environment,
    group: GroupTask,
    cell: CellTask,
    lease: Lease,
    status: str,
    duration: float,
    phases: dict[str, float],
    error: str | None,
    record: CellRecord | None = None,
) -> None:
    """One run-log record per attempt: ``<build run id>/<attempt generation>``; ``record``
    is the committed cell (its users and shards are logged)."""
    env.backend.append_run(
        RunRecord(
            run_id=f"{group.run_id}/{lease.generation}",
            target=lease.target,
            date=cell.day.isoformat(),
            status=status,
            build_pass=cell.build_pass,
            worker_id=env.owner,
            trigger=cell.reason,
            started=time.time() - duration,
            duration=duration,
            phases={k: round(v, 6) for k, v in phases.items()},
            error=error,
            items=record.item_count if record is not None else 0,
            shards=record.shard_count if record is not None else 0,
            changed=cell.changed,
        )
    )
