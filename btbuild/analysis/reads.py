"""What a cell reads beyond today's deps: earlier results of its deps (``dep_lookback``), and
the expired results (``btbuild gc``) a runnable cell reads and that must be recomputed first.

Functions of a :class:`~btbuild.analysis.planner.Planner` (kept apart to keep it small).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING

from btbuild.analysis.cells import (
    BLOCKED,
    IMPOSSIBLE,
    MISSING,
    PREVIOUS,
    RAN,
    RUNNABLE,
    SKIPPED,
    CellTask,
    Decision,
)
from btbuild.vocabulary import Reason
from btbuild.workspace.model import Target

if TYPE_CHECKING:  # the planner calls in here
    from btbuild.analysis.planner import Planner


def dep_history(
    planner: Planner,
    target: Target,
    day: date,
    dep_results: dict[str, str],
    dep_dates: dict[str, date],
) -> Decision | None:
    """Add the earlier results a ``dep_lookback`` target may read (``ctx.dep(name,
    days_ago=j)``) to its inputs, as ``"<label>@-<j>"``: the result hash, or
    :data:`MISSING` when the dep has no result that day (impossible, not scheduled,
    before the start date: ``ctx.dep`` gives None). Any other state blocks the cell, as
    for today's deps. ``dep_dates`` gets ``"<name>@-<j>"`` -> the date to read."""
    for label, days in target.dep_lookback:
        dep = planner.graph.targets[label]
        for back in range(1, days + 1):
            key = f"{label}@-{back}"
            dep_day = planner.as_of(dep, day - timedelta(days=back))
            if dep_day is None:
                dep_results[key] = MISSING
                continue
            state = planner.state.get((dep.name, dep_day)) or planner._outside_state(dep, dep_day)
            if state.status == RUNNABLE:
                dep_results[key] = "?"
            elif state.status == IMPOSSIBLE or state.reason == Reason.NOT_SCHEDULED:
                dep_results[key] = MISSING
            elif state.result_hash is None:
                return Decision(
                    BLOCKED,
                    Reason.WAITING_FOR_DEPS,
                    detail=f"{label} on {dep_day.isoformat()} (days_ago={back}) is {state.status}",
                )
            else:
                dep_results[key] = state.result_hash
                dep_dates[f"{dep.name}@-{back}"] = dep_day
    return None


def expired_reads(planner: Planner, task: CellTask) -> list[tuple[Target, date]]:
    """The expired cells (``btbuild gc``) a runnable cell reads: its deps' cells of
    today and of its dep look-back, and its previous result. Each must be recomputed
    first (the build does it and reports it as ``ran / expired``)."""
    target = planner.workspace.targets[task.name]
    reads = [
        (planner.workspace.targets[key.partition("@")[0]], day)
        for key, day in task.dep_dates.items()
    ]
    if task.previous_date is not None:
        reads.append((target, task.previous_date))
    return [
        (read, day)
        for read, day in reads
        if planner.cell_state(read, day).reason == Reason.EXPIRED
        and planner.cell_state(read, day).status == SKIPPED
    ]


def revival(planner: Planner, target: Target, day: date) -> CellTask | None:
    """The task recomputing an expired cell (None if it turns out not to need it)."""
    planner.revive.add((target.name, day))
    planner.state.pop((target.name, day), None)
    try:
        _decision, task, _inputs = planner.decide(target, day, details=True)
    finally:
        planner.revive.discard((target.name, day))
    return task


def looked_back(
    planner: Planner,
    target: Target,
    day: date,
    dep_results: dict[str, str],
    dep_dates: dict[str, date],
    key_lines: list[str],
) -> Decision | date | None:
    """Add what a cell reads of earlier days to its inputs (and to the input key's
    lines): its deps' earlier results (``dep_lookback``) and, historical, its own
    previous result, whose date it returns. A Decision when one of them is not final."""
    if target.dep_lookback:
        blocked = dep_history(planner, target, day, dep_results, dep_dates)
        if blocked is not None:
            return blocked
        # the input key wants its dep lines sorted by name ("//a:x@-1" does not sort
        # next to "//a:x" among other labels): rebuild them
        key_lines[3:] = [f"d:{name}={value}" for name, value in sorted(dep_results.items())]
    if not target.historical:
        return None
    found = previous_result(planner, target, day)
    if isinstance(found, Decision) or found is None:
        return found
    previous_date, previous_hash = found
    dep_results[PREVIOUS] = previous_hash
    key_lines.append(f"d:{PREVIOUS}={previous_hash}")  # "@" sorts after "//": still sorted
    return previous_date


def previous_result(
    planner: Planner, target: Target, day: date
) -> tuple[date, str] | Decision | None:
    """A historical cell's previous result: the latest earlier cell that has one."""
    probe = day - timedelta(days=1)
    while probe >= planner.workspace.start_date:
        state = planner.cell_state(target, probe)
        if state.status in (SKIPPED, RAN) and state.result_hash is not None:
            return probe, state.result_hash
        if state.status == RUNNABLE:
            return probe, "?"
        if state.status not in (IMPOSSIBLE,) and not (
            state.status == SKIPPED and state.reason == Reason.NOT_SCHEDULED
        ):
            return Decision(
                BLOCKED,
                Reason.WAITING_FOR_PREVIOUS_DAY,
                detail=f"{target.label} on {probe.isoformat()} is {state.status}",
            )
        probe -= timedelta(days=1)
    return None
