"""Values passed between the scheduler and the processes that run cells (picklable).

``CellTask`` is made by the planner (analysis stage) and re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from btbuild.analysis.cells import CellTask  # the plan's output, the executor's input


@dataclass(frozen=True)
class GroupTask:
    """Cells of one date and one pass, run together so per-user cells share one user stream."""

    day: date
    build_pass: int
    cells: tuple[CellTask, ...]
    run_id: str = ""


@dataclass(frozen=True)
class CellOutcome:
    name: str
    day: date
    status: str  # ran, failed, dead_letter, skipped (someone else committed it), blocked (leased)
    reason: str
    result_hash: str | None = None
    items: int = 0
    failures: int = 0
    duration: float = 0.0
    error: str | None = None
    phases: dict[str, float] = field(default_factory=dict)
