"""What a build is asked (:class:`BuildRequest`) and what it reports (:class:`BuildReport`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from btbuild.analysis.cells import BLOCKED, DEAD_LETTER, FAILED, RUNNABLE
from btbuild.vocabulary import FINAL_STATUSES, Reason

SUMMARY_KEYS = FINAL_STATUSES  # ran, skipped, blocked, impossible, failed, dead_letter


@dataclass(frozen=True)
class BuildRequest:
    patterns: tuple[str, ...]
    end: date
    start: date | None = None  # --from; default: [workspace] start_date
    dry_run: bool = False
    jobs: int = 1
    force: bool = False  # re-run the matched targets' cells
    force_deps: bool = False  # ... and their deps' cells too
    retry_dead: bool = False  # re-run dead letters whose inputs did not change
    wait: bool = True  # wait for cells another live builder holds (--no-wait: report them)


@dataclass(slots=True)
class CellReport:
    label: str
    date: date
    status: str
    reason: str
    build_pass: int = 0
    detail: str | None = None
    items: int = 0

    def to_json(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "label": self.label,
            "date": self.date.isoformat(),
            "status": self.status,
            "reason": self.reason,
        }
        if self.detail:
            row["detail"] = self.detail
        return row


@dataclass
class BuildReport:
    cells: list[CellReport] = field(default_factory=list)
    dry_run: bool = False
    # what the build changed in the cache before running cells (StorageCache.repair)
    repairs: list[str] = field(default_factory=list)
    # damaged cache files the build repaired before running again (sqlite_salvage.Salvage)
    salvage: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        keys = (RUNNABLE, *SUMMARY_KEYS) if self.dry_run else SUMMARY_KEYS
        counts: dict[str, int] = dict.fromkeys(keys, 0)
        for cell in self.cells:
            counts[cell.status] = counts.get(cell.status, 0) + 1
        return counts

    @property
    def ok(self) -> bool:
        """Every cell is done and current: nothing failed, was dead-lettered or is blocked
        (waiting for a dep or previous day that is not done, or for another builder), and
        every commit hook / alert of a committed cell succeeded."""
        return not any(
            cell.status in (FAILED, DEAD_LETTER, BLOCKED)
            or cell.reason == Reason.COMMIT_HOOK_FAILED
            for cell in self.cells
        )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"cells": [cell.to_json() for cell in self.cells]}
        data["summary"] = self.summary()
        if self.repairs:
            data["repairs"] = list(self.repairs)
        if self.salvage:
            data["salvage"] = list(self.salvage)
        return data

    def json_text(self) -> str:
        """``to_json()`` as text, one cell per line: readable, and written by the C encoder
        (an indented dump of 365k cells goes through the pure-Python one: 10x slower)."""
        cells = ",\n  ".join(json.dumps(cell.to_json()) for cell in self.cells)
        summary = json.dumps(self.summary())
        if self.repairs:
            summary += f', "repairs": {json.dumps(self.repairs)}'
        if self.salvage:
            summary += f', "salvage": {json.dumps(self.salvage)}'
        if not cells:
            return f'{{"cells": [], "summary": {summary}}}'
        return f'{{"cells": [\n  {cells}\n],\n "summary": {summary}}}'
