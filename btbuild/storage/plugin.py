"""The built-in storage backends, registered through ``btbuild_storage_backends`` exactly as
a third-party backend would be (a built-in plugin: btbuild/plugins/manager.py loads it)."""

from __future__ import annotations

from pathlib import Path

from btbuild.errors import ConfigError
from btbuild.storage.base import Backend
from btbuild.storage.registry import BackendSpec, StorageTable


def _memory(table: StorageTable) -> Backend:
    from btbuild.storage.memory import MemoryBackend

    return MemoryBackend()


def _sqlite(table: StorageTable) -> Backend:
    from btbuild.storage.sqlite import SqliteBackend

    return SqliteBackend(table.path("path", ".btbuild/cache.db"))


def _firestore(table: StorageTable) -> Backend:
    from btbuild.storage.firestore import FirestoreBackend, check_prefix

    project = table.optional("project", str)
    prefix = table.get("prefix", str, f"btbuild/{table.workspace}")
    try:
        check_prefix(prefix)
    except ConfigError as exc:
        raise table.error("prefix", exc.detail) from None
    return FirestoreBackend(project=project, prefix=prefix)


def _memory_factory() -> Backend:
    from btbuild.storage.memory import MemoryBackend

    return MemoryBackend()


def _sqlite_factory(path: str | Path) -> Backend:
    from btbuild.storage.sqlite import SqliteBackend

    return SqliteBackend(path)


def _firestore_factory(project: str | None = None, prefix: str = "btbuild/default") -> Backend:
    from btbuild.storage.firestore import FirestoreBackend

    return FirestoreBackend(project=project, prefix=prefix)


BUILTIN_BACKENDS = (
    BackendSpec(
        "sqlite", ("path", "project"), _sqlite, "one SQLite file (the default)", _sqlite_factory
    ),
    BackendSpec(
        "firestore",
        ("project", "prefix"),
        _firestore,
        "Google Cloud Firestore (a shared cache)",
        _firestore_factory,
    ),
    BackendSpec(
        "memory", ("project",), _memory, "in memory, gone with the process", _memory_factory
    ),
)


def btbuild_storage_backends() -> list[BackendSpec]:
    return list(BUILTIN_BACKENDS)
