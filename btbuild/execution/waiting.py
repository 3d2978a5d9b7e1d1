"""Builders wait for each other, like Bazel waits for its output lock.

A cell another live builder holds the lease of comes back from the runner as ``blocked /
leased``. Instead of reporting it so (and exiting 0 with the cell built by nobody), the
scheduler parks it here; :meth:`LeaseWaiter.free` polls the cache and hands back the cells
whose lease ended (committed, failed, released, expired, or held by a process that is gone),
and the scheduler decides them again from their fresh records: skipped when the other builder
committed what this build wants, run otherwise. The runner never waits while holding leases,
so two builders waiting for each other cannot deadlock.

A failed cell whose retry is not due yet (its back-off: btbuild/execution/backoff.py) is
parked here too, until the time it is due (:meth:`LeaseWaiter.park_until`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

from btbuild.execution.liveness import is_dead_local_owner
from btbuild.execution.tasks import CellOutcome
from btbuild.storage.base import Backend
from btbuild.vocabulary import Reason, Status

POLL_SECONDS = 0.2
GroupKey = tuple[date, int]  # (date, pass) of a group
LEASED = Reason.LEASED
DEPS_MOVED = Reason.DEPS_MOVED


def is_leased_elsewhere(outcome: CellOutcome) -> bool:
    """The runner found the cell leased by another builder (or lost its lease to one)."""
    return outcome.status == Status.BLOCKED and outcome.reason == LEASED


class LeaseWaiter:
    """Cells parked until another builder's lease on them ends, by group key."""

    def __init__(
        self,
        backend: Backend,
        labels: Mapping[str, str],
        announce: Callable[[str], None],
        poll: float = POLL_SECONDS,
    ):
        self.backend = backend
        self.labels = labels  # target name -> label, for messages
        self.announce = announce
        self.poll = poll
        self.waiting: dict[GroupKey, tuple[date, set[str]]] = {}  # group -> (day, names)
        self.backing_off: dict[GroupKey, dict[str, float]] = {}  # group -> name -> due time
        self._last_poll = 0.0

    @property
    def waited(self) -> bool:
        """Whether this build waited for another builder (or a back-off) at all."""
        return self._last_poll > 0.0

    def __bool__(self) -> bool:
        return bool(self.waiting or self.backing_off)

    def holds(self, key: GroupKey) -> bool:
        return key in self.waiting or key in self.backing_off

    def park_until(self, key: GroupKey, due: dict[str, float]) -> None:
        """Wait until each cell's retry is due (epoch seconds); says so on stderr."""
        self.backing_off.setdefault(key, {}).update(due)
        now = time.time()
        for name, when in sorted(due.items()):
            at = time.strftime("%H:%M:%S", time.gmtime(when))
            self.announce(
                f"btbuild: {self.labels.get(name, name)} on {key[0].isoformat()} failed before: "
                f"its retry is due at {at} UTC (back-off): waiting {max(0.0, when - now):.0f} s"
            )

    def _due(self) -> list[tuple[GroupKey, list[str]]]:
        """The backed-off cells whose retry is due now, by group; no longer parked."""
        now = time.time()
        ready = []
        for key, due in list(self.backing_off.items()):
            names = sorted(name for name, when in due.items() if when <= now)
            for name in names:
                del due[name]
            if not due:
                del self.backing_off[key]
            if names:
                ready.append((key, names))
        return ready

    def park(self, key: GroupKey, outcomes: list[CellOutcome]) -> None:
        """Wait for these cells of the group ``key``; says so on stderr (one line per group)."""
        names = {outcome.name for outcome in outcomes}
        day = key[0]
        self.waiting.setdefault(key, (day, set()))[1].update(names)
        shown = ", ".join(self.labels.get(name, name) for name in sorted(names)[:3])
        more = f" and {len(names) - 3} more" if len(names) > 3 else ""
        self.announce(
            f"btbuild: waiting for another builder: {shown}{more} on {day.isoformat()} "
            f"{'is' if len(names) == 1 else 'are'} leased by it"
        )

    def free(self) -> list[tuple[GroupKey, list[str]]]:
        """The parked cells whose lease ended (or whose retry is due) since the last call, by
        group (polls the cache at most every ``poll`` seconds); they are no longer parked."""
        ready: dict[GroupKey, list[str]] = dict(self._due())
        if self.waiting and time.monotonic() - self._last_poll >= self.poll:
            self._last_poll = time.monotonic()
            for key, done in self._unleased():
                ready[key] = sorted({*ready.get(key, []), *done})
        return list(ready.items())

    def _unleased(self) -> list[tuple[GroupKey, list[str]]]:
        now = time.time()
        ready: list[tuple[GroupKey, list[str]]] = []
        for key, (day, names) in list(self.waiting.items()):
            records = self.backend.get_cells(sorted(names), [day.isoformat()])
            done = []
            for name in sorted(names):
                record = records.get((name, day.isoformat()))
                if (
                    record is None
                    or not record.is_leased(now)
                    or is_dead_local_owner(record.lease_owner or "")
                ):
                    done.append(name)
            if done:
                names.difference_update(done)
                if not names:
                    del self.waiting[key]
                ready.append((key, done))
        return ready

    def next_free(self, key: GroupKey) -> list[str]:
        """Block until at least one parked cell of group ``key`` is free; those cells."""
        while True:
            for found, names in self.free():
                if found == key:
                    return names
            time.sleep(self.poll)

    def sleep(self) -> None:
        wait = self.poll
        if self.backing_off and not self.waiting:  # only back-offs: sleep until the first
            first = min(when for due in self.backing_off.values() for when in due.values())
            wait = min(max(0.0, first - time.time()), 1.0)
        time.sleep(wait)


def merge_rounds(first: Any, later: Any) -> Any:
    """The report of a build that planned again: the later round's cells, except that a cell
    the later round skipped keeps what the earlier round did with it (it ran there)."""
    before = {(cell.label, cell.date): cell for cell in first.cells}
    cells = []
    for cell in later.cells:
        old = before.get((cell.label, cell.date))
        keep = (
            old is not None
            and cell.status == Status.SKIPPED
            and old.status in (Status.RAN, Status.SKIPPED)
        )
        cells.append(old if keep else cell)
    later.cells = cells
    return later


def moved_cells(scheduler: Any, report: Any) -> list[Any]:
    """The cells of a round to plan again: those whose commit found a dep moved and - when
    the round ran, adopted or waited for anything, so that it decided cells later than it
    read the cache - the cells it skipped whose result another builder replaced since that
    read. A skip decided from the old read would end the build, exit 0, with the other
    builder's result, computed from other inputs (a replaced dep of a cell it ran is found by
    the commit's compare-and-set; a skipped cell has no commit). Those are reported
    ``blocked / deps_moved`` unless a later round decides them again. One query."""
    if scheduler.request.dry_run:
        return []
    moved = [cell for cell in report.cells if cell.reason == DEPS_MOVED]
    if not scheduler.waiter.waited and not any(
        cell.status == Status.RAN or cell.reason == Reason.COSMETIC for cell in report.cells
    ):
        return moved
    decided = {
        key: state.result_hash
        for key, state in scheduler.planner.state.items()
        if state.status == Status.SKIPPED and state.result_hash is not None
    }
    stale = set(scheduler.cache.results_moved(decided))
    for cell in report.cells:
        target = scheduler.targets.get(cell.label)
        if cell.status == Status.SKIPPED and target and (target.name, cell.date) in stale:
            cell.status, cell.reason = Status.BLOCKED, DEPS_MOVED
            cell.detail = "another builder replaced its result after this build read it"
            moved.append(cell)
    return moved
