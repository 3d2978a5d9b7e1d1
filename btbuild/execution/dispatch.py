"""Dispatching a build's groups to an executor (a local process pool, Pub/Sub workers).

Each (date, pass) group is decided once everything it may depend on is final, and its
runnable cells are submitted; ``submit(group)`` returns a future of their outcomes. A group
depends on the same date's previous pass and, when its pass looks back in time, on the
previous date's same pass. With ``[execution] user_shards`` > 1 a group's per_user cells run
as that many parts, then a combine. A group with cells parked for another builder is done
once they are decided again. A task whose worker process died runs once more, cell by cell,
each alone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, BrokenExecutor, Future, wait
from dataclasses import dataclass, field, replace
from datetime import date
from typing import TYPE_CHECKING

from btbuild.analysis.cells import DEAD_LETTER, FAILED, RAN, SKIPPED
from btbuild.execution.report import BuildReport
from btbuild.execution.tasks import CellOutcome, CellTask, GroupTask

if TYPE_CHECKING:
    from btbuild.execution.build import Scheduler

Submit = Callable[[GroupTask], "Future[list[CellOutcome]]"]
Group = tuple[date, int]


@dataclass
class Flight:
    """A decided group whose tasks are out: futures left, parts back, final outcomes."""

    outstanding: int = 0
    parts: list[list[CellOutcome]] = field(default_factory=list)
    outcomes: list[CellOutcome] = field(default_factory=list)


class Dispatch:
    """One dispatch of a scheduler's groups through ``submit``."""

    def __init__(
        self, scheduler: Scheduler, groups: list[Group], report: BuildReport, submit: Submit
    ):
        self.scheduler = scheduler
        self.report = report
        self.submit = submit
        self.position = {day: index for index, day in enumerate(scheduler.dates)}
        self.done: set[Group] = set()
        self.pending = list(groups)
        self.running: dict[Future[list[CellOutcome]], tuple[Group, GroupTask]] = {}
        self.flights: dict[Group, Flight] = {}
        self.handed: set[str] = set()  # targets with cells handed out (see _ahead)
        self.told: set[str] = set()
        self.landed = 0  # tasks whose outcomes came back

    def run(self) -> None:
        waiter = self.scheduler.waiter
        while self.pending or self.running or waiter:
            self._sweep()
            if self.landed:  # the workers are up and running (their start-up is not slowed)
                self._ahead()
            if not self.running:
                if waiter:
                    waiter.sleep()
                continue  # everything decided was skipped: the next sweep makes progress
            timeout = waiter.poll if waiter else None
            finished, _ = wait(self.running, timeout=timeout, return_when=FIRST_COMPLETED)
            for future in finished:
                self._collect(future)

    def _sweep(self) -> None:
        """Decide every pending group whose needs are done, and the cells freed by others."""
        scheduler = self.scheduler
        still = []
        for group in self.pending:
            if all(need in self.done for need in needs(scheduler, group, self.position)):
                self.start(group, scheduler._decide_group(group, self.report))
            else:
                still.append(group)
        self.pending = still
        for key, names in scheduler.waiter.free():
            self.start(key, scheduler._decide_again(key, names, self.report))

    def _collect(self, future: Future[list[CellOutcome]]) -> None:
        key, task = self.running.pop(future)
        retried = self.scheduler._retried
        outcomes = outcomes_of(future, task, retried)
        if outcomes is None:  # its worker died: once more, alone (cell by cell)
            self.flights[key].outstanding -= 1
            for again in retries(task, retried):
                self.launch(key, again)
            return
        self.land(key, task, outcomes)

    def launch(self, key: Group, task: GroupTask) -> None:
        self.running[self.submit(task)] = (key, task)
        self.flights[key].outstanding += 1
        self.handed.update(cell.name for cell in task.cells)

    def _ahead(self) -> None:
        """Tell the sim judge which targets have cells out: the SimHashes registered after
        the build (of the targets that ran) can be simulated while this process only waits
        for the workers (``ahead``: btbuild/sim/isolated.py), instead of after the build."""
        ahead = getattr(self.scheduler.equivalent, "ahead", None)
        new = self.handed - self.told
        if ahead is None or not new:
            return
        self.told |= new
        targets = self.scheduler.targets
        with contextlib.suppress(Exception):  # only a head start: after_run does it all anyway
            ahead([targets[label] for label in self.scheduler.order if targets[label].name in new])

    def start(self, key: Group, tasks: GroupTask | None) -> None:
        if tasks is not None:  # expired results its cells read are recomputed first
            tasks = self.scheduler._revive_expired(tasks, self.report)
        if tasks is not None:
            self.flights.setdefault(key, Flight())
            for part in split(self.scheduler, tasks):
                self.launch(key, part)
        elif key not in self.flights and not self.scheduler.waiter.holds(key):
            self.done.add(key)

    def land(self, key: Group, task: GroupTask, outcomes: list[CellOutcome]) -> None:
        self.landed += 1
        flight = self.flights[key]
        flight.outstanding -= 1
        if task.shards > 1 and not task.combine:
            flight.parts.append(outcomes)
            if len(flight.parts) == task.shards:
                combines, failed = settle_parts(self.scheduler, task, flight.parts)
                flight.outcomes.extend(failed)
                for combine in combines:
                    self.launch(key, combine)
        else:
            flight.outcomes.extend(outcomes)
        if flight.outstanding == 0:
            del self.flights[key]
            self.scheduler._finish(key, flight.outcomes, self.report)
            self.start(key, None)


def needs(scheduler: Scheduler, group: Group, position: Mapping[date, int]) -> list[Group]:
    """The groups that must be done before ``group`` is decided."""
    day, build_pass = group
    passes = scheduler.passes
    found = []
    if build_pass != passes[0]:
        found.append((day, passes[passes.index(build_pass) - 1]))
    if scheduler.planner.looks_back[build_pass] and position[day] > 0:
        found.append((scheduler.dates[position[day] - 1], build_pass))
    return found


def outcomes_of(
    future: Future[list[CellOutcome]], task: GroupTask, retried: list[GroupTask]
) -> list[CellOutcome] | None:
    """The outcomes of a finished task; None when its worker process died and it gets
    another try (a task that was only queued next to the one that killed its worker must
    not fail for it). A retried task whose process dies again fails, cell by cell."""
    try:
        return future.result()
    except BrokenExecutor:
        if not any(seen is task for seen in retried):
            return None
    return [
        CellOutcome(
            cell.name,
            cell.day,
            FAILED,
            cell.reason,
            error=(
                f"{cell.name} on {cell.day.isoformat()}: the worker process running it died "
                "(os._exit, a crash or the OOM killer)"
            ),
        )
        for cell in task.cells
    ]


def retries(task: GroupTask, retried: list[GroupTask]) -> list[GroupTask]:
    """A task whose worker died, as retries: one per cell (each in a process of its own,
    so only the cell that kills its process fails), or whole for a part of a sharded
    cell (its parts are counted)."""
    alone = (
        [replace(task, cells=(cell,)) for cell in task.cells]
        if task.shards == 1 and not task.combine and len(task.cells) > 1
        else [task]
    )
    retried.extend(alone)
    return alone


def split(scheduler: Scheduler, tasks: GroupTask) -> list[GroupTask]:
    """The group as submitted: whole, or its per_user cells as ``user_shards`` parts."""
    shards = scheduler.workspace.execution.user_shards
    by_name = scheduler.by_name
    per_user = tuple(cell for cell in tasks.cells if by_name[cell.name].kind == "per_user")
    if shards == 1 or not per_user:
        return [tasks]
    rest = tuple(cell for cell in tasks.cells if cell not in per_user)
    parts = [replace(tasks, cells=per_user, shard=shard, shards=shards) for shard in range(shards)]
    return parts + ([replace(tasks, cells=rest)] if rest else [])


def settle_parts(
    scheduler: Scheduler, task: GroupTask, parts: list[list[CellOutcome]]
) -> tuple[list[GroupTask], list[CellOutcome]]:
    """Every part of a sharded group is back: each cell whose parts all committed gets a
    combine task (cells combine in parallel); a cell with a failed part fails (its record
    says so, for the next build's retry or dead letter) and one with a leased part is
    blocked."""
    ok: list[CellTask] = []
    failed: list[CellOutcome] = []
    for cell in task.cells:
        outcomes = [outcome for part in parts for outcome in part if outcome.name == cell.name]
        bad = next((o for o in outcomes if o.status not in (RAN, SKIPPED)), None)
        if bad is None:
            ok.append(cell)
            continue
        failed.append(bad)
        if bad.status in (FAILED, DEAD_LETTER):
            scheduler.backend.put_cell_status(
                cell.name,
                cell.day.isoformat(),
                bad.status,
                last_error=bad.error,
                attempt_key=cell.key,
            )
    return [replace(task, cells=(cell,), shard=0, combine=True) for cell in ok], failed
