"""Fused per-user streams, the scheduler's side: which later-pass per_user cells ride along in
an earlier pass's user stream (see :mod:`btbuild.execution.fused` for the whole design and
the worker's side). Kept apart from the worker's side so that planning a build - all a no-op
build does - imports nothing that runs cells.
"""

from __future__ import annotations

import os
from datetime import date
from typing import Any

from btbuild.analysis.cells import RUNNABLE
from btbuild.analysis.views import CellState
from btbuild.execution.fused_task import DEFERRED, HELD, is_provisional
from btbuild.execution.tasks import CellOutcome, CellTask
from btbuild.storage.records import EXPIRED
from btbuild.vocabulary import Reason
from btbuild.workspace.model import Target


def enabled() -> bool:
    return os.environ.get("BTBUILD_FUSE", "1") != "0"


class Fusion:
    """The scheduler's side: which later-pass cells ride along in a group's user stream."""

    def __init__(self, scheduler: Any):
        self.scheduler = scheduler
        self.active = (
            enabled()
            and not scheduler.request.dry_run
            and scheduler.workspace.execution.user_shards == 1
        )
        self.range = frozenset(scheduler.dates)
        self.taken: set[tuple[str, date]] = set()  # planned into an earlier pass's group

    def taken_over(self, name: str, day: date) -> bool:
        """Whether the cell was planned into an earlier group (its own pass skips it)."""
        return bool(self.taken) and (name, day) in self.taken

    def settle(self, outcomes: list[CellOutcome]) -> list[CellOutcome]:
        """A group's outcomes without the deferred fused cells (decided in their own pass)."""
        kept = []
        for outcome in outcomes:
            if outcome.status == HELD:  # never leaves a worker; defensive
                raise AssertionError(f"held outcome of {outcome.name} left its group")
            if outcome.status == DEFERRED:
                self.taken.discard((outcome.name, outcome.day))
            else:
                kept.append(outcome)
        return kept

    def extend(self, day: date, build_pass: int, tasks: list[CellTask]) -> list[CellTask]:
        """The provisional tasks of later passes on ``day`` fused into this group."""
        if not self.active:
            return []
        planner = self.scheduler.planner
        fused = self._producers(day, tasks)
        if not fused or any(planner.expired_reads(task) for task in tasks):
            return []
        marked = [(name, day) for name in fused]
        for key in marked:
            planner.state[key] = CellState(RUNNABLE, "fused")
        extra: list[CellTask] = []
        try:
            for later in (p for p in planner.passes if p > build_pass):
                for target in planner.by_pass[later]:
                    task = self._provisional(target, day, fused)
                    if task is None:
                        continue
                    extra.append(task)
                    fused.add(target.name)
                    marked.append((target.name, day))
                    planner.state[(target.name, day)] = CellState(RUNNABLE, "fused")
        finally:
            for key in marked:
                planner.state.pop(key, None)
        self.taken.update((task.name, day) for task in extra)
        return extra

    def _producers(self, day: date, tasks: list[CellTask]) -> set[str]:
        """The group's per_user cells whose values can be handed on (not revivals of
        collected results, and undecided until now: a real build keeps no state for them)."""
        scheduler, planner = self.scheduler, self.scheduler.planner
        iso = day.isoformat()
        names = set()
        for task in tasks:
            if scheduler.by_name[task.name].kind != "per_user":
                continue
            summary = scheduler.cache.summaries.get((task.name, iso))
            if task.reason == Reason.EXPIRED or (summary is not None and summary.status == EXPIRED):
                continue
            if (task.name, day) in planner.state:
                return set()  # not a state this module knows: do not fuse
            names.add(task.name)
        return names

    def _provisional(self, target: Target, day: date, fused: set[str]) -> CellTask | None:
        """The provisional task of ``target`` on ``day`` if it can be fused, else None."""
        scheduler, planner = self.scheduler, self.scheduler.planner
        if target.kind != "per_user" or target.historical or target.dep_lookback:
            return None
        if (target.name, day) in planner.state or (target.name, day) in self.taken:
            return None
        deps = [scheduler.graph.targets[label] for label in target.deps]
        if not any(dep.name in fused for dep in deps):
            return None
        for dep in deps:
            dep_day = planner.as_of(dep, day)
            if dep.name in fused:
                if dep.kind != "per_user" or dep_day != day:
                    return None
            elif dep_day is None or (
                dep_day in self.range and (dep.name, dep_day) not in planner.state
            ):
                return None  # undecided (or runnable in this group): its result is unknown
        iso = day.isoformat()
        cache = scheduler.cache
        if target.name not in planner.forced and (
            cache.summaries.get((target.name, iso)) is not None
            or (target.name, iso) in cache.damaged
        ):
            return None
        decided: tuple[Any, CellTask | None, Any] = planner.decide(target, day)
        decision, task, _inputs = decided
        if task is None or decision.reason not in (Reason.NEW, Reason.FORCED):
            return None
        if not is_provisional(task) or planner.expired_reads(task):
            return None
        return task
