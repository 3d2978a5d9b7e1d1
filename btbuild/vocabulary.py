"""The words btbuild's stages share: cell statuses, the reasons behind them, cache record
statuses and the narrow summary of a cache record.

This module sits below every stage (it imports nothing of btbuild), so analysis, storage,
execution and the readers agree on one spelling without importing each other. Every member
is a ``str`` equal to its value (``Status.RAN == "ran"``): records written before the enums
existed, JSON, SQLite rows and Firestore documents hold the plain strings and compare equal.
"""

from __future__ import annotations

from enum import Enum
from typing import Literal, NamedTuple

Kind = Literal["per_user", "per_date"]
KINDS: tuple[Kind, ...] = ("per_user", "per_date")  # of a target and of a stored result


class StrEnum(str, Enum):
    """A string enum whose members print as their value (``enum.StrEnum`` is Python 3.11+)."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return str(self.value).__format__(spec)


class Status(StrEnum):
    """What happened to a (target, date) cell in a build (DESIGN.md section 5)."""

    RAN = "ran"
    RUNNABLE = "runnable"  # decided to run (a dry run stops here)
    SKIPPED = "skipped"
    BLOCKED = "blocked"
    IMPOSSIBLE = "impossible"
    FAILED = "failed"
    DEAD_LETTER = "dead_letter"


# the statuses a cell ends a real build with (a build report counts each)
FINAL_STATUSES = (
    Status.RAN,
    Status.SKIPPED,
    Status.BLOCKED,
    Status.IMPOSSIBLE,
    Status.FAILED,
    Status.DEAD_LETTER,
)


class Reason(StrEnum):
    """Why a cell has its status (``btbuild explain`` prints it)."""

    # skipped
    UP_TO_DATE = "up_to_date"
    EARLY_CUTOFF = "early_cutoff"  # a dep re-ran and its result did not change
    COSMETIC = "cosmetic"  # a code change proven harmless by simulation
    NOT_SCHEDULED = "not_scheduled"
    EXPIRED = "expired"  # its result was collected by ``btbuild gc`` (runnable: a cell reads it)
    # runnable
    NEW = "new"
    FORCED = "forced"
    DAMAGED = "damaged"  # its stored result does not match its hashes
    RETRY = "retry"
    RETRY_DEAD = "retry_dead"
    COSMETIC_RECHECK = "cosmetic_recheck"  # an earlier cosmetic adoption no longer proven
    EPOCH_CHANGED = "epoch_changed"
    CODE_CHANGED = "code_changed"
    INFRA_CHANGED = "infra_changed"
    ROOTS_CHANGED = "roots_changed"
    DEPS_CHANGED = "deps_changed"
    # impossible
    NO_DATA = "no_data"
    UPSTREAM = "upstream"
    # blocked
    NOT_BUILT = "not_built"  # a cell before the build range that has no record
    WAITING_FOR_DEPS = "waiting_for_deps"
    WAITING_FOR_PREVIOUS_DAY = "waiting_for_previous_day"
    LEASED = "leased"  # another builder holds its lease
    DEPS_MOVED = "deps_moved"  # a dep's result changed under this build (re-planned)
    # dead_letter
    MAX_ATTEMPTS = "max_attempts"
    # ran, but the commit hooks failed
    COMMIT_HOOK_FAILED = "commit_hook_failed"


class VerdictKind(StrEnum):
    """The simulation's verdict on a code change (btbuild.sim: the build's judge and
    ``btbuild verify``); only ``cosmetic`` lets a cell skip."""

    COSMETIC = "cosmetic"
    BEHAVIOUR_CHANGED = "behaviour_changed"
    UNPROVEN = "unproven"
    WEAK = "weak"  # the simulation cannot tell code versions apart
    NEW = "new"  # btbuild verify: a target the base revision does not have
    REMOVED = "removed"  # btbuild verify: a target only the base revision has


class RecordStatus(StrEnum):
    """The status of a cache record: its latest attempt's state (btbuild.storage.records)."""

    COMMITTED = "committed"
    RUNNING = "running"
    FAILED = "failed"
    DEAD_LETTER = "dead_letter"
    IMPOSSIBLE = "impossible"
    # the result's shards were deleted by ``btbuild gc`` (retention): the record keeps its
    # result_hash and inputs (dependents' hashes and explain need them), generation is None
    EXPIRED = "expired"


class CellSummary(NamedTuple):
    """What the planner reads of every cache record to see that a cell is up to date
    (``Backend.get_cell_summaries``); the full record is read only for cells that changed."""

    status: str  # a RecordStatus value
    composite_hash: str | None
    result_hash: str | None
    generation: str | None  # None: no committed result
    category: str | None

    @property
    def has_result(self) -> bool:
        return self.generation is not None
