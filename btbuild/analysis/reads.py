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
