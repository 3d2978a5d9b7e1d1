"""``btbuild report --html``: what the static HTML report shows, collected from the cache.

:func:`collect` gathers one JSON-able payload: the targets x dates grid of marks (what a
build would do with each cell: the same dry run as ``btbuild status``), for each cell with a
record its result summary, for each cell that would run the inputs that moved (hash by hash),
the newest runs of each cell from the run log, per-build timings, and the dependency graph of
the selection. :mod:`btbuild.readers.report_html` turns it into one self-contained page.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from btbuild.readers.marks import MARK_STYLES, mark
from btbuild.storage.records import CellRecord, RunRecord
from btbuild.vocabulary import Reason, RecordStatus, Status

if TYPE_CHECKING:  # the planner and the session are imported when a report is collected
    from btbuild.analysis.cells import CellTask, Change, Decision
    from btbuild.analysis.planner import Planner
    from btbuild.session import Session
    from btbuild.workspace.model import Target

RUNS_PER_CELL = 3
NEWEST_BUILDS = 12
RUN_LOG_SCAN = 20_000
COMPONENTS = ("epoch", "code", "layers", "infra", "declaration")


@dataclass(frozen=True)
class ReportRequest:
    patterns: tuple[str, ...]
    end: date
    start: date | None = None


def collect(session: Session, request: ReportRequest) -> dict[str, Any]:
    """The report's payload for the matched targets (and their deps) over the dates.

    Compact on purpose (a year of 50 targets is 18k cells): per-cell facts are arrays, and
    repeated strings (run ids, workers, reasons) are indexes into ``strings``."""
    from btbuild.execution.build import BuildRequest, Scheduler
    from btbuild.sim.isolated import isolated_judge

    build = BuildRequest(
        patterns=request.patterns, end=request.end, start=request.start, dry_run=True
    )
    with isolated_judge(session) as judge:  # calculation code runs in a child process
        scheduler = Scheduler(session, build, equivalent=judge)
        changes = _keep_changes(scheduler.plan().planner)
        plan = scheduler.run()
    dates = sorted({cell.date for cell in plan.cells})
    labels = list(scheduler.order)
    names = [scheduler.targets[label].name for label in labels]
    isos = [day.isoformat() for day in dates]
    cells = _Cells(labels, names, isos)
    grid = [[" "] * len(dates) for _ in labels]
    day_index = {day: j for j, day in enumerate(dates)}
    for cell in plan.cells:
        i, j = cells.row[cell.label], day_index[cell.date]
        grid[i][j] = mark(cell)
        moved = changes.get((scheduler.targets[cell.label].name, cell.date), ())
        cells.decision(i, j, cell.status, cell.reason, cell.detail, moved)
    for (name, iso), record in session.backend.get_cells(names, isos).items():
        cells.record(name, iso, record)
    runs = session.backend.find_runs(limit=RUN_LOG_SCAN)
    for run in runs:  # newest first
        cells.run(run)
    return {
        "workspace": session.workspace.name,
        "dates": isos,
        "targets": [_target(scheduler, session.hashes, label) for label in labels],
        "grid": ["".join(row) for row in grid],
        "cells": cells.by_key,
        "strings": cells.strings,
        "builds": _builds(runs, set(names)),
        "marks": {m: {"name": name, "colour": colour} for m, (name, colour) in MARK_STYLES.items()},
        "summary": plan.summary(),
    }


def _keep_changes(planner: Planner) -> dict[tuple[str, date], tuple[Change, ...]]:
    """Keep the changes of every decision the planner makes during the plan (what moved, hash
    by hash), instead of deciding each cell a second time for the report."""
    kept: dict[tuple[str, date], tuple[Change, ...]] = {}
    settle = planner.settle

    def settle_and_keep(target: Target, day: date) -> tuple[Decision, CellTask | None]:
        decision, task = settle(target, day)
        if decision.changes:
            kept[(target.name, day)] = decision.changes
        return decision, task

    planner.settle = settle_and_keep  # type: ignore[method-assign]  # this planner keeps what moved
    return kept


class _Cells:
    """Per-cell facts, keyed ``"i,j"`` (target row, date column), as compact arrays:

    * ``d``: [status, reason, detail, [[component, recorded, current], ...]] of the plan;
    * ``r``: [record status, result hash, items, shards, kind, attempts, error, updated];
    * ``u``: the newest runs, each [run id, status, trigger, changed, started, seconds,
      worker, users, error]; strings are indexes into ``strings``.
    """

    def __init__(self, labels: Sequence[str], names: Sequence[str], isos: Sequence[str]):
        self.row = {label: i for i, label in enumerate(labels)}
        self.name_row = {name: i for i, name in enumerate(names)}
        self.column = {iso: j for j, iso in enumerate(isos)}
        self.by_key: dict[str, dict[str, Any]] = {}
        self.strings: list[str] = []
        self._ids: dict[str, int] = {}

    def _s(self, text: str | None) -> int | None:
        if text is None:
            return None
        found = self._ids.get(text)
        if found is None:
            found = self._ids[text] = len(self.strings)
            self.strings.append(text)
        return found

    def _entry(self, i: int, j: int) -> dict[str, Any]:
        return self.by_key.setdefault(f"{i},{j}", {})

    def decision(
        self, i: int, j: int, status: str, reason: str, detail: str | None, moved: Iterable[Any]
    ) -> None:
        rows = [[c.component, c.old, c.new] for c in moved]
        if (
            status == Status.SKIPPED
            and reason in (Reason.UP_TO_DATE, Reason.EARLY_CUTOFF)
            and not detail
        ):
            return  # the grid's mark says it all
        self._entry(i, j)["d"] = [self._s(status), self._s(reason), detail, rows]

    def record(self, name: str, iso: str, record: CellRecord) -> None:
        i, j = self.name_row[name], self.column[iso]
        self._entry(i, j)["r"] = [
            self._s(record.status),
            record.result_hash if record.has_result else None,
            record.item_count,
            record.shard_count,
            self._s(record.kind),
            record.attempts,
            record.last_error,
            round(record.updated_at),
        ]

    def run(self, run: RunRecord) -> None:
        i, j = self.name_row.get(run.target), self.column.get(run.date)
        if i is None or j is None:
            return
        listed = self._entry(i, j).setdefault("u", [])
        if len(listed) < RUNS_PER_CELL:
            listed.append(
                [
                    self._s(run.run_id.split("/", 1)[0]),
                    self._s(run.status),
                    self._s(run.trigger),
                    [self._s(c) for c in run.changed],
                    round(run.started),
                    round(run.duration, 4),
                    self._s(run.worker_id),
                    run.items,
                    run.error,
                ]
            )


def _target(scheduler: Any, hashes: Any, label: str) -> dict[str, Any]:
    target = scheduler.targets[label]
    hashed = hashes[target.name]  # keyed by target name
    return {
        "label": label,
        "name": target.name,
        "package": target.package,
        "kind": target.kind,
        "pass": scheduler.graph.passes[label],
        "deps": [dep for dep in target.deps if dep in scheduler.targets],
        "components": {name: str(getattr(hashed, name)) for name in COMPONENTS},
    }


def _builds(runs: Iterable[RunRecord], names: set[str]) -> list[dict[str, Any]]:
    """Timings of the newest builds that ran cells of the selection: per pass, the summed
    cell time, the wall time from its first start to its last end, and users per second."""
    grouped: dict[str, list[RunRecord]] = defaultdict(list)
    for run in runs:
        if run.target in names:
            grouped[run.run_id.split("/", 1)[0]].append(run)
    newest = sorted(grouped.items(), key=lambda item: -max(r.started for r in item[1]))
    builds = []
    for build_id, members in newest[:NEWEST_BUILDS]:
        passes: dict[int, list[RunRecord]] = defaultdict(list)
        for run in members:
            passes[run.build_pass].append(run)
        rows = []
        for number in sorted(passes):
            cells = passes[number]
            busy = sum(r.duration for r in cells)
            users = sum(r.items for r in cells)
            rows.append(
                {
                    "pass": number,
                    "cells": len(cells),
                    "seconds": round(busy, 4),
                    "wall": round(
                        max(r.started + r.duration for r in cells) - min(r.started for r in cells),
                        4,
                    ),
                    "users": users,
                    "users_per_second": round(users / busy, 1) if busy > 0 else None,
                }
            )
        builds.append(
            {
                "run": build_id,
                "started": min(r.started for r in members),
                "cells": len(members),
                "failed": sum(r.status != RecordStatus.COMMITTED for r in members),
                "passes": rows,
            }
        )
    return builds
