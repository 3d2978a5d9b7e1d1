"""The lease heartbeat keeps a short lease alive while a cell runs, and lets it lapse after."""

from __future__ import annotations

import time

from btbuild.execution.heartbeat import Heartbeat
from btbuild.storage.memory import MemoryBackend


def test_a_held_lease_outlives_its_length_and_lapses_once_dropped() -> None:
    backend = MemoryBackend()
    lease = backend.acquire("risk", "2024-01-02", "me:1", lease_seconds=0.6)
    assert lease is not None
    beat = Heartbeat(backend.renew, every=0.2)
    beat.hold(lease)
    time.sleep(1.5)  # 2.5 leases: without renewals it would have expired twice over
    record = backend.get_cell("risk", "2024-01-02")
    assert record is not None and record.is_leased(time.time()), beat.renewals
    assert beat.renewals >= 3
    # another builder cannot take it while it is renewed
    assert backend.acquire("risk", "2024-01-02", "other:2", lease_seconds=5) is None
    beat.drop(lease)
    time.sleep(1.0)
    assert backend.acquire("risk", "2024-01-02", "other:2", lease_seconds=5) is not None


def test_a_lease_taken_over_or_finished_is_no_longer_renewed() -> None:
    backend = MemoryBackend()
    lease = backend.acquire("risk", "2024-01-02", "me:1", lease_seconds=0.3)
    assert lease is not None
    beat = Heartbeat(backend.renew, every=0.2)
    beat.hold(lease)
    backend.release(lease)  # ended elsewhere: the next beat finds it lost and drops it
    time.sleep(0.7)
    assert beat.held() == []
