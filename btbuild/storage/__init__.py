"""Storage: the action cache, result shards, run log, SimHash registry and equivalence ledger.

The bottom layer of btbuild: it imports nothing from the other stages. Open a backend with
:func:`open_backend` and use it as a context manager::

    with open_backend("sqlite", path=".btbuild/cache.db") as backend:
        lease = backend.acquire("portfolio_risk", "2024-01-31", owner="me", lease_seconds=900)
        if lease is not None:
            with backend.open_writer(lease, "per_user") as writer:
                writer.add({"u001": {"risk": 0.3}})
                writer.commit(composite_hash="...", category="risk")

See docs/storage.md for the commit protocol and the crash guarantees.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from btbuild.errors import ConfigError
from btbuild.storage.base import Backend, ResultWriter
from btbuild.storage.codec import SHARD_LIMIT, PerUserHash, canonical_bytes, result_hash
from btbuild.storage.firestore import FirestoreBackend
from btbuild.storage.memory import MemoryBackend
from btbuild.storage.records import (
    COMMITTED,
    DEAD_LETTER,
    FAILED,
    IMPOSSIBLE,
    RUNNING,
    STATUSES,
    CellRecord,
    Equivalence,
    Lease,
    RunRecord,
)
from btbuild.storage.sqlite import SqliteBackend

__all__ = [
    "COMMITTED",
    "DEAD_LETTER",
    "FAILED",
    "IMPOSSIBLE",
    "RUNNING",
    "SHARD_LIMIT",
    "STATUSES",
    "BACKENDS",
    "Backend",
    "CellRecord",
    "Equivalence",
    "Lease",
    "MemoryBackend",
    "PerUserHash",
    "ResultWriter",
    "RunRecord",
    "SqliteBackend",
    "canonical_bytes",
    "open_backend",
    "result_hash",
]

BACKENDS: dict[str, Callable[..., Backend]] = {
    "memory": MemoryBackend,
    "sqlite": SqliteBackend,
    "firestore": FirestoreBackend,  # google-cloud-firestore is imported on first use
}
"""Backend name (``[storage] backend``) -> factory taking that backend's settings."""


def open_backend(kind: str, **settings: Any) -> Backend:
    """Open the backend named ``kind`` ("sqlite" takes ``path``; "memory" takes nothing)."""
    factory = BACKENDS.get(kind)
    if factory is None:
        raise ConfigError(
            f"[storage] backend = {kind!r} is unknown; expected one of {', '.join(sorted(BACKENDS))}"
        )
    try:
        inspect.signature(factory).bind(**settings)
    except TypeError as exc:
        raise ConfigError(
            f"[storage] settings {sorted(settings)} do not fit backend {kind!r}: {exc}"
        ) from None
    return factory(**settings)
