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
from btbuild.execution.tasks import GroupTask, part_of
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
    parts: int = 0  # orphaned parts of sharded cells forgotten (drop_orphan_parts)
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
    report.parts = drop_orphan_parts(backend, workspace, as_of, now, dry_run=dry_run)
    return report


def drop_orphan_parts(
    backend: Any, workspace: Workspace, as_of: date, now: float, *, dry_run: bool
) -> int:
    """Forget the parts of sharded cells ([execution] user_shards) no combine of these
    settings needs; returns how many. A part is an orphan when it was merged (its cell
    holds a committed result of the part's input key, committed after it: a combine killed
    before deleting its parts leaves them), when it is one of another number of parts than
    ``user_shards`` says now (left by a build before the setting changed), or when its date
    is past its target's ``ttl_days`` (a result of that date would be collected). Kept: a part
    being built (a live lease), one without a committed result, and every part of the
    current number whose cell holds no result of its key (a running or resumed build
    combines it). Each is forgotten only while it holds the generation read here (a
    builder that committed it again since keeps it); a combine that finds one gone anyway
    plans its cell again, it never reads another result."""
    shards = workspace.execution.user_shards
    cutoffs = {  # name -> the first date gc keeps results of (ttl_days)
        target.name: (as_of - timedelta(days=ttl)).isoformat()
        for target in workspace.targets.values()
        if (ttl := workspace.ttl_of(target)) is not None
    }
    listed = [
        (part, iso, found)
        for part, iso in backend.part_cells([t.name for t in workspace.targets.values()])
        if (found := part_of(part)) is not None and found[1] == iso
    ]
    if not listed:
        return 0
    isos = sorted({iso for _part, iso, _found in listed})
    parts = backend.get_cells(sorted({part for part, _iso, _found in listed}), isos)
    cells = backend.get_cells(sorted({found[0] for _part, _iso, found in listed}), isos)
    dropped = 0
    for part, iso, (name, _iso, _shard, count) in listed:
        record, cell = parts.get((part, iso)), cells.get((name, iso))
        if record is None or record.generation is None or record.is_leased(now):
            continue
        merged = (
            cell is not None
            and cell.has_result
            and not cell.is_leased(now)
            and cell.composite_hash == record.composite_hash
            and cell.updated_at >= record.updated_at
        )
        if not (merged or count != shards or iso < cutoffs.get(name, "")):
            continue
        if dry_run or backend.forget_result(part, iso, generation=record.generation, now=now):
            dropped += 1
    return dropped
