"""Start an attempt at a cell: check the code, take the lease, prepare the context.

A cell is refused when the process's code differs from the code it was planned with; it is
not run when another builder holds it or committed it meanwhile (:func:`take_lease`). Then
its whole-date inputs (deps, look-back days, its previous result) are read and handed to a
:class:`~btbuild.execution.context.Context`; its per-user inputs come through the group's
shared user stream (:mod:`btbuild.execution.per_user`).
"""

from __future__ import annotations

import time
from datetime import date
from typing import Any

from btbuild.analysis.cells import PREVIOUS
from btbuild.errors import BtbuildError, DamagedResult
from btbuild.execution.attempt import CellRun, give_back_damaged, take_lease
from btbuild.execution.context import Context, own_copy
from btbuild.execution.environment import Environment
from btbuild.execution.finish import abort
from btbuild.execution.fused_task import deferred, is_provisional
from btbuild.execution.schemas import schema_validators
from btbuild.execution.tasks import CellOutcome, CellTask, GroupTask, part_name
from btbuild.plugins.validators import ResultValidator
from btbuild.storage.records import EXPIRED, FAILED
from btbuild.storage.streamed import StreamedResult
from btbuild.workspace.model import Target


def start(
    env: Environment, group: GroupTask, cell: CellTask, target: Target
) -> CellRun | CellOutcome:
    """Take the cell's lease and prepare its context; an outcome if it cannot or need not run.
    A part of a sharded cell is stored under its part name and checked only when combined."""
    started = time.perf_counter()
    refused = _other_code(env, cell, target)
    if refused is not None:
        return refused
    store = (
        cell.name
        if group.shards == 1
        else part_name(cell.name, cell.day, group.shard, group.shards)
    )
    lease = take_lease(env, cell, store)
    if isinstance(lease, CellOutcome):
        return lease
    writer = env.backend.open_writer(lease, target.kind)
    try:
        check_reads(env, target, cell)
        process = env.loader.factory(target)()
        validators = _validators(env, group, target)
        stamps: dict[tuple[str, date], str | None] = {}
        ctx = _context(env, cell, target, stamps)
    except DamagedResult as exc:
        return give_back_damaged(env, [(cell, target, lease)], exc)[0]
    except BtbuildError as exc:
        if is_provisional(cell):  # its key is not complete: decided again in its own pass
            env.heartbeat.drop(lease)
            env.backend.release(lease)
            return deferred(cell)
        return abort(env, group, cell, lease, writer, str(exc), started)
    run = CellRun(cell, target, lease, writer, validators, started, process=process, ctx=ctx)
    run.root_stamps = stamps
    run.streamed = tuple(streamed_deps(ctx))
    run.phases["setup"] = time.perf_counter() - started
    return run


def streamed_deps(ctx: Context) -> list[StreamedResult]:
    """The per_user deps a per_date calculation reads shard by shard (see runner.py)."""
    return [value for value in ctx._whole_deps.values() if isinstance(value, StreamedResult)]


def _other_code(env: Environment, cell: CellTask, target: Target) -> CellOutcome | None:
    """A failed outcome when this process's code or inputs (data files, packages, environment
    variables: the ``infra`` hash) are not those the cell was planned with."""
    mine = env.static_hashes.get(cell.name) if env.static_hashes is not None else cell.static
    if mine == cell.static:
        return None
    own = env.components.get(cell.name, {})
    differ = [name for name, value in own.items() if cell.components.get(name) != value]
    what = ", ".join(_WHAT.get(name, name) for name in differ) or "static hash"
    return CellOutcome(
        cell.name,
        cell.day,
        FAILED,
        cell.reason,
        error=(
            f"{target.label}: this worker's {what} differ from the build's plan (static hash "
            f"{mine} here, {cell.static} planned): run workers from the same revision, with the "
            "same data files, packages and environment variables"
        ),
    )


_WHAT = {
    "code": "code",
    "layers": "layers",
    "infra": "infra (data files, packages or environment variables the code reads)",
    "declaration": "declaration",
    "epoch": "epoch",
}


def _validators(env: Environment, group: GroupTask, target: Target) -> list[ResultValidator]:
    """The cell's checks (none for a part of a sharded cell: its combine checks every user)."""
    if group.shards > 1:
        return []
    return env.plugins.validators(
        target.name, target.kind, target.checks, target.build_file
    ) + schema_validators(target)


def _context(
    env: Environment,
    cell: CellTask,
    target: Target,
    stamps: dict[tuple[str, date], str | None],
) -> Context:
    """The calculation's context, with the whole-date inputs read (per_user ones stream);
    ``stamps`` gets the fingerprint of each day of root data the calculation loads."""

    def load_root(source: str, day: date) -> Any:
        stamps[(source, day)], value = env.load_root_stamped(source, day)
        return own_copy(value)  # the process's cached copy stays as loaded

    by_name = {env.by_label[label].name: env.by_label[label] for label in target.deps}
    dep_names = {name: name for name in by_name} | {
        dep.label: name for name, dep in by_name.items()
    }
    whole = {}
    for name, dep in by_name.items():
        planned = (name, cell.dep_dates[name].isoformat(), cell.dep_results.get(dep.label))
        if target.stream_deps and dep.kind == "per_user":  # read shard by shard
            whole[name] = env.backend.read_streamed(*planned)
        elif target.kind == "per_date" or dep.kind == "per_date":
            whole[name] = env.backend.read_expected(*planned)
    history: dict[tuple[str, int], Any] = {}
    for name, back, dep_day, expected in lookback_reads(env, cell):
        if target.kind == "per_date" or env.kind_of(name) == "per_date":
            history[(name, back)] = env.backend.read_expected(name, dep_day.isoformat(), expected)
    previous_value = None
    if target.historical and target.kind == "per_date" and cell.previous_date is not None:
        previous_value = env.backend.read_expected(
            target.name, cell.previous_date.isoformat(), cell.dep_results.get(PREVIOUS)
        )
    user_sources = frozenset(s for s in target.all_roots if env.sources[s].scope == "user")
    return Context(
        target,
        cell.day,
        root_loader=load_root,
        user_sources=user_sources,
        dep_names=dep_names,
        whole_deps=whole,
        dep_history=history,
        previous=previous_value,
    )


def lookback_reads(env: Environment, cell: CellTask) -> list[tuple[str, int, date, str]]:
    """The ``dep_lookback`` reads of a cell that has them: (dep name, days ago, date, the
    result hash the cell was planned with). Reads check that hash like today's deps do, so a
    result another builder committed after the plan (and maybe put back before this cell's
    commit compares its deps) is never read in place of the planned one."""
    reads = []
    for key, dep_day in cell.dep_dates.items():  # "name@-j" -> the date to read
        name, at, back = key.partition("@-")
        if at:
            label = env.workspace.targets[name].label
            reads.append((name, int(back), dep_day, cell.dep_results[f"{label}@-{back}"]))
    return reads


def check_reads(env: Environment, target: Target, cell: CellTask) -> None:
    """Refuse to run on a dep or previous result that ``btbuild gc`` collected (the build
    recomputes those first; reading one anyway would compute from nothing)."""
    reads = [(key.partition("@")[0], day) for key, day in cell.dep_dates.items()]
    if cell.previous_date is not None:
        reads.append((target.name, cell.previous_date))
    for name, day in reads:
        record = env.backend.get_cell(name, day.isoformat())
        if record is not None and record.status == EXPIRED:
            raise BtbuildError(
                f"{target.label}: the result of {name} on {day.isoformat()} it reads was collected "
                "(btbuild gc) and not recomputed: build again"
            )
