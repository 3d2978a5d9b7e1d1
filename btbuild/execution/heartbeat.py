"""The lease heartbeat: renews every lease a process holds while its cells run.

A lease (``[execution] lease_seconds``) is what tells other builders and workers that a cell
is being worked on; when its holder dies, the lease expires and the cell is taken over. A
heartbeat thread renews each held lease every third of its length, so a lease can be short
(a minute or two: a dead worker's cell is taken over within about one lease) however long
the calculation runs, including per_date calculations that never return to btbuild's loop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from btbuild.errors import LeaseLost
from btbuild.storage.records import Lease


class Heartbeat:
    """Renews held leases from a daemon thread (started on the first :meth:`hold`)."""

    def __init__(self, renew: Callable[[Lease], Lease], every: float):
        self._renew = renew
        self.every = max(0.2, every)
        self._held: dict[tuple[str, str, str], Lease] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.renewals = 0

    def hold(self, lease: Lease) -> None:
        with self._lock:
            self._held[(lease.target, lease.date, lease.generation)] = lease
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._beat, name="btbuild-lease-heartbeat", daemon=True
                )
                self._thread.start()

    def drop(self, lease: Lease) -> None:
        with self._lock:
            self._held.pop((lease.target, lease.date, lease.generation), None)

    def held(self) -> list[Lease]:
        with self._lock:
            return list(self._held.values())

    def _beat(self) -> None:
        stop = threading.Event()  # never set: the thread dies with the process
        while not stop.wait(self.every):
            for lease in self.held():
                try:
                    self._renew(lease)
                    self.renewals += 1
                except LeaseLost:  # committed, aborted or taken over meanwhile: nothing to keep
                    self.drop(lease)
                except Exception:  # noqa: BLE001, S112 - a missed beat is retried; the lease has 2 more
                    continue
