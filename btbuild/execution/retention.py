"""Retention: results older than a target's ``ttl_days`` are collected by ``btbuild gc``,
and recomputed by a later build exactly when a cell that runs must read them.

``gc`` deletes an expired result's shards and keeps its record (status ``expired``): its
result hash and inputs stay, so dependents' input hashes, ``explain`` and the run log are
unchanged and nothing re-runs because of the collection itself. The planner reports such a
cell as ``skipped / expired`` (status ``e``). When a cell that runs reads one (a dep today, a
dep look-back day, a historical target's previous result), the build recomputes it first, in
the scheduler's process, recursively (an expired cell may itself read expired ones), and
reports it as ``ran / expired``; then the reading cells are decided again.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any

from btbuild.analysis.cells import date_range
from btbuild.execution.tasks import GroupTask
from btbuild.workspace.model import Target, Workspace


def revive_expired(scheduler: Any, tasks: GroupTask, report: Any) -> GroupTask | None:
    """The group to run once the expired cells its cells read are recomputed."""
    planner = scheduler.planner
    needed = [read for task in tasks.cells for read in planner.expired_reads(task)]
    if not needed:
        return tasks
    for target, day in dict.fromkeys(needed):
        _revive(scheduler, target, day, report)
    cells = []
    for task in tasks.cells:  # decide again: the reads' result hashes are final now
        target = scheduler.by_name[task.name]
        decision, again = planner.settle(target, task.day)
        if again is not None:
            cells.append(again)
        else:
            scheduler._report(report, target, task.day, decision.status, decision.reason)
    return replace(tasks, cells=tuple(cells)) if cells else None


def _revive(scheduler: Any, target: Target, day: date, report: Any) -> None:
    planner = scheduler.planner
    task = planner.revival(target, day)
    if task is None:
        return
    reads = planner.expired_reads(task)
    for read, read_day in dict.fromkeys(reads):
        _revive(scheduler, read, read_day, report)
    if reads:
        task = planner.revival(target, day)
        if task is None:
            return
    label = target.label
    report.cells[:] = [c for c in report.cells if not (c.label == label and c.date == day)]
    group = GroupTask(day, task.build_pass, (task,), run_id=scheduler.run_id)
    scheduler._apply(scheduler._run_here(group), report)


@dataclass
class GcReport:
    as_of: date
    dry_run: bool
    expired: list[tuple[str, str]] = field(default_factory=list)  # (label, ISO date)
    shards: int = 0
    per_target: dict[str, tuple[int, int]] = field(default_factory=dict)  # label -> (n, ttl)


def collect(backend: Any, workspace: Workspace, as_of: date, *, dry_run: bool = False) -> GcReport:
    """Expire every committed result whose date is more than its target's ttl before
    ``as_of``: delete its shards, keep its record (status ``expired``). Each cell is expired
    atomically (``Backend.expire_result``): one being built (a live lease) or re-committed
    by a builder since it was read is left alone and not counted."""
    import time

    report = GcReport(as_of, dry_run)
    now = time.time()
    for target in workspace.targets.values():
        ttl = workspace.ttl_of(target)
        if ttl is None:
            continue
        cutoff = as_of - timedelta(days=ttl)
        if cutoff <= workspace.start_date:
            continue
        days = [d.isoformat() for d in date_range(workspace.start_date, cutoff - timedelta(days=1))]
        records = backend.get_cells([target.name], days)
        count = 0
        for (_name, iso), record in sorted(records.items()):
            if not record.has_result or record.is_leased(now) or record.generation is None:
                continue
            if not dry_run and not backend.expire_result(target.name, iso, record.generation):
                continue  # rebuilt or taken by a builder since it was read: not expired
            count += 1
            report.expired.append((target.label, iso))
            report.shards += record.shard_count
        if count:
            report.per_target[target.label] = (count, ttl)
    return report
