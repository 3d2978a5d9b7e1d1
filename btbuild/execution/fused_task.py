"""What marks a fused cell in a group's tasks (see :mod:`btbuild.execution.fused`).

A *provisional* task is a per_user cell of a later pass that runs in an earlier pass's user
stream: the results of the deps it is fused with are not known when it is planned, so its
``dep_results`` hold :data:`FUSED` for them (the planner's "result not known yet", as in a
dry run) and its ``key`` is completed once they have committed. An attempt that cannot be
completed is given back as :data:`DEFERRED`: the scheduler then decides the cell in its own
pass, exactly as an unfused build does.
"""

from __future__ import annotations

from btbuild.execution.tasks import CellOutcome, CellTask

FUSED = "?"
"""``dep_results`` value of a dep whose result the fused cell receives in memory."""

DEFERRED = "fused_deferred"
"""Outcome status of a fused cell handed back to its own pass (never reported)."""

HELD = "fused_held"
"""Outcome status of a fused cell whose abort waits for its deps' commits (internal)."""


def is_provisional(cell: CellTask) -> bool:
    return FUSED in cell.dep_results.values()


def deferred(cell: CellTask) -> CellOutcome:
    return CellOutcome(cell.name, cell.day, DEFERRED, cell.reason)
