"""What the planner reads, as protocols: the action cache (:class:`CacheView`, provided by
the execution stage over storage), a cache record (:class:`RecordView`, a
``btbuild.storage.records.CellRecord``), the root index, and the simulation's verdict on a
code change. Analysis imports neither storage nor sim: these are the joins.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from btbuild.analysis.cells import CellInputs
from btbuild.vocabulary import CellSummary
from btbuild.workspace.model import Target


class RecordView(Protocol):
    """The fields of a cache record the planner and explain read."""

    @property
    def status(self) -> str: ...
    @property
    def has_result(self) -> bool: ...
    @property
    def result_hash(self) -> str | None: ...
    @property
    def composite_hash(self) -> str | None: ...
    @property
    def code_hash(self) -> str | None: ...
    @property
    def sim_hash(self) -> str | None: ...
    @property
    def attempt_key(self) -> str | None: ...
    @property
    def last_error(self) -> str | None: ...
    @property
    def attempts(self) -> int: ...
    @property
    def category(self) -> str | None: ...
    @property
    def components(self) -> Mapping[str, str]: ...
    @property
    def root_fingerprints(self) -> Mapping[str, str]: ...
    @property
    def dep_results(self) -> Mapping[str, str]: ...


class VerdictView(Protocol):
    """The simulation's verdict on a code-only change (``btbuild.sim.verdict.Verdict``)."""

    @property
    def sim_hash(self) -> str | None:
        """Set when the change is proven cosmetic."""

    @property
    def reason(self) -> str:
        """Why (not) proven."""


class CacheView(Protocol):
    """What the planner reads of the action cache."""

    @property
    def summaries(self) -> Mapping[tuple[str, str], CellSummary]:
        """(name, ISO date) -> summary of every cell of the plan's dates that has a record."""

    def full_record(self, name: str, day: date) -> RecordView | None:
        """The whole record of a cell of the plan (a ``CellRecord``), or None."""

    def record(self, name: str, day: date) -> RecordView | None:
        """The whole record of any cell, before the plan's dates too (``--from``)."""

    @property
    def damaged(self) -> Mapping[tuple[str, str], str]:
        """(name, ISO date) -> why: cells whose stored result does not match its hashes
        (left out of ``summaries``: they are missing and must run)."""


class RootIndexLike(Protocol):
    def available(self, source: str, day: date) -> bool: ...

    def fingerprint(self, source: str, day: date) -> str | None: ...


@dataclass(slots=True)
class CellState:
    status: str
    reason: str
    result_hash: str | None = None  # of the result a dependent would read
    reran: bool = False  # ran in this build (so an unchanged result means early cutoff)


# The record argument of both callbacks is a RecordView; typed Any so that callbacks written
# for the storage stage's CellRecord fit (a callable's parameter types are contravariant).
Equivalent = Callable[[Target, Any, CellInputs], "VerdictView | None"]
"""``equivalent(target, record, inputs)``: the verdict on a code-only change, or None."""

RecheckVerdict = Callable[[Target, date, Any], VerdictView]
"""``recheck_verdict(target, day, record)``: the verdict on an earlier cosmetic adoption."""
