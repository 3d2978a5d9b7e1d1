"""Run the cells of one (date, pass) group and commit them.

A group's per_date cells run one by one (:func:`run_per_date`); its per_user cells share
one stream of users (:mod:`btbuild.execution.per_user`); a combine task merges the parts of
a sharded per_user cell (:func:`combine`). Each cell is one attempt
(:mod:`btbuild.execution.start`, :mod:`btbuild.execution.attempt`), committed or aborted
(:mod:`btbuild.execution.finish`).
"""

from __future__ import annotations

import contextlib
import heapq
import time
from collections.abc import Iterator

from btbuild.errors import BtbuildError, CalculationError, DamagedResult, SourceError
from btbuild.execution import fused
from btbuild.execution.attempt import (
    RERUN_EQUAL_KEY,
    Attempt,
    CellRun,
    give_back_damaged,
    release_lease,
    take_lease,
)
from btbuild.execution.environment import Environment, static_hashes, worker_id
from btbuild.execution.finish import abort, abort_run, commit
from btbuild.execution.guard import calc_output, describe, raised_by_calc
from btbuild.execution.schemas import schema_validators
from btbuild.execution.start import start
from btbuild.execution.streams import merge_streams as _merge
from btbuild.execution.tasks import CellOutcome, CellTask, GroupTask, part_name
from btbuild.storage.records import COMMITTED
from btbuild.storage.streamed import plain

__all__ = ["Environment", "_merge", "combine", "run_group", "static_hashes", "worker_id"]
from btbuild.vocabulary import Reason, Status


def run_group(env: Environment, group: GroupTask) -> list[CellOutcome]:
    """Run the group's cells (or combine its parts); their outcomes in the group's order."""
    try:
        if group.combine:
            return [combine(env, group, cell) for cell in group.cells]
        with calc_output():  # what calculations print is their log (stderr), never the report
            try:
                return _run_group(env, group)
            finally:
                env.restore_environ()  # what a calculation set there failed its group's cells
    except BaseException:  # Ctrl-C, a worker's SIGTERM: every cell started is as it was
        for lease in env.heartbeat.held():  # wherever it was taken (a start, a re-run, a combine)
            release_lease(env, lease)
        raise


def _run_group(env: Environment, group: GroupTask) -> list[CellOutcome]:
    outcomes: list[CellOutcome] = []
    per_user: list[CellRun] = []
    for cell in group.cells:
        target = env.workspace.targets[cell.name]
        run_or_outcome = start(env, group, cell, target)
        if isinstance(run_or_outcome, CellOutcome):
            outcomes.append(fused.started(cell, run_or_outcome))
        elif target.kind == "per_user":
            per_user.append(run_or_outcome)
        else:
            outcomes.append(run_per_date(env, group, run_or_outcome))
    if per_user:
        outcomes.extend(fused.run_per_user(env, group, per_user))
    order = {cell.name: index for index, cell in enumerate(group.cells)}
    return sorted(outcomes, key=lambda outcome: order[outcome.name])


def run_per_date(env: Environment, group: GroupTask, run: CellRun) -> CellOutcome:
    """Call a per_date cell's calculation once, check and commit its value."""
    compute_start = time.perf_counter()
    try:
        value = run.process(run.ctx)
    except SourceError as exc:
        return lost_input(env, group, run) or abort_run(
            env, group, run, f"{run.target.label}: {exc}"
        )
    except BaseException as exc:
        if not raised_by_calc(exc):
            raise
        lost = lost_input(env, group, run)
        return lost or abort_run(env, group, run, f"{run.target.label}: {describe(exc)}")
    if run.streamed:  # a streamed dep it returns is written as the dict it stands for
        with contextlib.suppress(BtbuildError):  # kept in the dep's ``error``: see below
            value = plain(value)
        lost = lost_input(env, group, run)
        if lost is not None:
            return lost
    try:
        run.writer.add(value)
    except CalculationError as exc:
        message = f"{run.target.label}: returned a value that is not JSON: {exc}"
        return abort_run(env, group, run, message)
    for validator in run.validators:
        validator.observe(None, value)
    run.processed = 1
    run.phases["compute"] = time.perf_counter() - compute_start
    return commit(env, group, run)


def lost_input(env: Environment, group: GroupTask, run: CellRun) -> CellOutcome | None:
    """The cell's outcome when reading a streamed dep failed while its calculation ran,
    whatever the calculation did with the exception: a damaged dep gives the cell back (the
    dep is rebuilt next build), any other failure fails the attempt."""
    error = next((dep.error for dep in run.streamed if dep.error is not None), None)
    if error is None:
        return None
    if isinstance(error, DamagedResult):
        return give_back_damaged(env, [(run.task, run.target, run.lease)], error)[0]
    return abort_run(env, group, run, f"{run.target.label}: {error}")


def combine(env: Environment, group: GroupTask, cell: CellTask) -> CellOutcome:
    """Merge the committed parts of a sharded per_user cell into the cell itself: the parts'
    canonical lines are merged in user order and written as they are (nothing is computed or
    encoded again), the validators see every user, and the result hash — order-independent —
    is the one an unsharded run gives. The parts are deleted once the cell is committed."""
    started = time.perf_counter()
    iso = cell.day.isoformat()
    target = env.workspace.targets[cell.name]
    parts = [part_name(cell.name, cell.day, shard, group.shards) for shard in range(group.shards)]
    checked: dict[str, tuple[str | None, str | None]] = {}  # part -> (result hash, generation)
    for part in parts:
        record = env.backend.get_cell(part, iso)
        if record is not None:
            checked[part] = (record.result_hash, record.generation)
        if record is None or record.status != COMMITTED or record.composite_hash != cell.key:
            return _parts_moved(env, cell, target.label, part)
    lease = take_lease(env, cell, cell.name)
    if isinstance(lease, CellOutcome):
        if lease.status == Status.SKIPPED:
            _drop_parts(env, checked, iso)
        return lease
    writer = env.backend.open_writer(lease, "per_user")
    try:
        validators = env.plugins.validators(
            target.name, target.kind, target.checks, target.build_file
        ) + schema_validators(target)
        # exactly the parts checked above: one another builder replaced since is moved on
        streams = [env.backend.iter_result_lines(part, iso, checked[part][0]) for part in parts]
        merged = heapq.merge(*streams, key=lambda item: item[0])
        users = 0

        def lines() -> Iterator[tuple[str, bytes]]:
            nonlocal users
            for user_id, value, line in merged:
                users += 1
                for validator in validators:
                    validator.observe(user_id, value)
                yield user_id, line

        writer.add_lines(lines())
        attempt = Attempt(cell, target, lease, writer, validators, started, processed=users)
        attempt.phases["combine"] = time.perf_counter() - started
    except DamagedResult as exc:  # a part replaced (planned again) or damaged (rebuilt)
        return give_back_damaged(env, [(cell, target, lease)], exc)[0]
    except BtbuildError as exc:
        message = f"{target.label}: combining {group.shards} parts failed: {exc}"
        return abort(env, group, cell, lease, writer, message, started)
    outcome = commit(env, group, attempt)
    if outcome.status == Status.RAN:
        _drop_parts(env, checked, iso)
    return outcome


def _parts_moved(env: Environment, cell: CellTask, label: str, part: str) -> CellOutcome:
    """A part this build committed (or found committed) is gone or holds other inputs now:
    another builder of the same code combined the cell and dropped its parts (the cell then
    holds this key: skipped), or one of other code replaced the part (given back and planned
    again: the parts run again). Never a failure: nothing of this build's went wrong."""
    record = env.backend.get_cell(cell.name, cell.day.isoformat())
    if (
        record is not None
        and record.status == COMMITTED
        and record.composite_hash == cell.key
        and cell.reason not in RERUN_EQUAL_KEY
    ):
        return CellOutcome(
            cell.name, cell.day, Status.SKIPPED, Reason.UP_TO_DATE, result_hash=record.result_hash
        )
    error = f"{label}: part {part} was replaced or merged by another builder since it ran"
    return CellOutcome(cell.name, cell.day, Status.BLOCKED, Reason.DEPS_MOVED, error=error)


def _drop_parts(
    env: Environment, checked: dict[str, tuple[str | None, str | None]], iso: str
) -> None:
    """Delete the parts merged, each only while it is still the generation merged: a part
    another builder committed since (for its own combine) is left to it."""
    for part, (_result, generation) in checked.items():
        env.backend.forget_result(part, iso, generation=generation)
