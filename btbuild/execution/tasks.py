"""Values passed between the scheduler and the processes that run cells (picklable).

``CellTask`` is made by the planner (analysis stage) and re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from btbuild.analysis.cells import CellTask as CellTask  # the plan's output, the executor's input


@dataclass(frozen=True)
class GroupTask:
    """Cells of one date and one pass, run together so per-user cells share one user stream."""

    day: date
    build_pass: int
    cells: tuple[CellTask, ...]
    run_id: str = ""
    # ``[execution] user_shards`` > 1 splits per_user cells: part ``shard`` of ``shards``
    # computes the users whose id hashes to it into a part cell; the ``combine`` task then
    # merges the parts into the real cell (see btbuild/execution/runner.py)
    shard: int = 0
    shards: int = 1
    combine: bool = False

    @property
    def label(self) -> str:
        """Names the task in ids and logs: ``2024-01-05_p2``, ``..._s1of4``, ``..._combine4_risk``."""
        base = f"{self.day.isoformat()}_p{self.build_pass}"
        if self.combine:  # one combine task per cell
            return f"{base}_combine{self.shards}_" + "_".join(cell.name for cell in self.cells)
        return f"{base}_s{self.shard + 1}of{self.shards}" if self.shards > 1 else base


def part_name(name: str, day: date, shard: int, shards: int) -> str:
    """The storage name of one part of a sharded per_user cell; unique per (cell, shard), so
    a part can be deleted alone once combined."""
    return f"{name}~{day.isoformat()}~{shard + 1}of{shards}"


def part_of(stored: str) -> tuple[str, str, int, int] | None:
    """(target name, ISO date, shard, shards) of a part's storage name (:func:`part_name`);
    None for any other name."""
    name, _, rest = stored.partition("~")
    iso, _, which = rest.partition("~")
    index, _, count = which.partition("of")
    if not (name and iso and index.isdigit() and count.isdigit()):
        return None
    return name, iso, int(index) - 1, int(count)


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
