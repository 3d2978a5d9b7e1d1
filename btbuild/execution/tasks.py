"""Values passed between the scheduler and the processes that run cells (picklable)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True)
class CellTask:
    """One cell to run: what it is, why, and every input the commit must record."""

    name: str
    day: date
    reason: str
    build_pass: int
    key: str  # CellInputs.key: the cell's input hash, stored as composite_hash
    static: str
    code_hash: str
    components: dict[str, str]
    root_fingerprints: dict[str, str]
    dep_results: dict[str, str]
    dep_dates: dict[str, date]  # dep target name -> the date of the dep cell it reads
    previous_date: date | None = None  # historical: the cell whose result is ctx.previous
    sim_hash: str | None = None


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
