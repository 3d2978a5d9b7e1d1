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
from typing import TYPE_CHECKING, Any

from btbuild.errors import ConfigError
from btbuild.storage.base import Backend, ResultWriter
from btbuild.storage.codec import SHARD_LIMIT, PerUserHash, canonical_bytes, result_hash
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

if TYPE_CHECKING:
    from btbuild.storage.firestore import FirestoreBackend


def __getattr__(name: str) -> Any:
    """``FirestoreBackend`` is imported when it is asked for (most processes use SQLite)."""
    if name == "FirestoreBackend":
        from btbuild.storage.firestore import FirestoreBackend

        return FirestoreBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "COMMITTED",
    "DEAD_LETTER",
    "FAILED",
    "IMPOSSIBLE",
    "RUNNING",
    "SHARD_LIMIT",
    "STATUSES",
    "Backend",
    "CellRecord",
    "Equivalence",
    "FirestoreBackend",
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


def open_backend(kind: str, **settings: Any) -> Backend:
    """Open a built-in backend by name with keyword settings ("sqlite" takes ``path``,
    "firestore" ``project`` and ``prefix``, "memory" nothing). A workspace opens its backend
    from its ``[storage]`` table instead (:func:`btbuild.session.open_storage`), which also
    finds plugins' backends."""
    from btbuild.storage.plugin import BUILTIN_BACKENDS

    specs = {spec.name: spec for spec in BUILTIN_BACKENDS}
    spec = specs.get(kind)
    if spec is None or spec.factory is None:
        raise ConfigError(
            f"[storage] backend = {kind!r} is unknown; expected one of {', '.join(sorted(specs))}"
        )
    try:
        inspect.signature(spec.factory).bind(**settings)
    except TypeError as exc:
        raise ConfigError(
            f"[storage] settings {sorted(settings)} do not fit backend {kind!r}: {exc}"
        ) from None
    return spec.factory(**settings)
