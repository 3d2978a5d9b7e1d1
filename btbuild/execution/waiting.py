"""Builders wait for each other, like Bazel waits for its output lock.

A cell another live builder holds the lease of comes back from the runner as ``blocked /
leased``. Instead of reporting it so (and exiting 0 with the cell built by nobody), the
scheduler parks it here; :meth:`LeaseWaiter.free` polls the cache and hands back the cells
whose lease ended (committed, failed, released, expired, or held by a process that is gone),
and the scheduler decides them again from their fresh records: skipped when the other builder
committed what this build wants, run otherwise. The runner never waits while holding leases,
so two builders waiting for each other cannot deadlock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

from btbuild.execution.liveness import is_dead_local_owner
from btbuild.execution.tasks import CellOutcome
from btbuild.storage.base import Backend

POLL_SECONDS = 0.2
GroupKey = tuple[date, int]  # (date, pass) of a group
LEASED = "leased"
DEPS_MOVED = "deps_moved"


def is_leased_elsewhere(outcome: CellOutcome) -> bool:
    """The runner found the cell leased by another builder (or lost its lease to one)."""
    return outcome.status == "blocked" and outcome.reason == LEASED


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
        self._last_poll = 0.0

    def __bool__(self) -> bool:
        return bool(self.waiting)

    def holds(self, key: GroupKey) -> bool:
        return key in self.waiting

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
        """The parked cells whose lease ended since the last call, by group (polls the cache
        at most every ``poll`` seconds); they are no longer parked."""
        if not self.waiting or time.monotonic() - self._last_poll < self.poll:
            return []
        self._last_poll = time.monotonic()
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
        time.sleep(self.poll)


def merge_rounds(first: Any, later: Any) -> Any:
    """The report of a build that planned again: the later round's cells, except that a cell
    the later round skipped keeps what the earlier round did with it (it ran there)."""
    before = {(cell.label, cell.date): cell for cell in first.cells}
    cells = []
    for cell in later.cells:
        old = before.get((cell.label, cell.date))
        keep = old is not None and cell.status == "skipped" and old.status in ("ran", "skipped")
        cells.append(old if keep else cell)
    later.cells = cells
    return later
