"""SQLite specifics: opening, schema versions, the factory."""

from __future__ import annotations

from pathlib import Path

import pytest

from btbuild.errors import ConfigError, StorageError
from btbuild.storage import MemoryBackend, SqliteBackend, open_backend


def test_open_backend_factory(tmp_path: Path) -> None:
    with open_backend("sqlite", path=tmp_path / "a" / "b" / "cache.db") as backend:
        assert isinstance(backend, SqliteBackend)
        assert backend.db.journal_mode == "wal"
    assert (tmp_path / "a" / "b" / "cache.db").exists()
    assert isinstance(open_backend("memory"), MemoryBackend)
    with pytest.raises(ConfigError, match=r"'postgres' is unknown; expected one of (firestore, )?memory, sqlite"):
        open_backend("postgres")
    with pytest.raises(ConfigError, match="do not fit backend 'memory'"):
        open_backend("memory", path="x.db")


def test_results_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "cache.db"
    with SqliteBackend(path) as backend:
        lease = backend.acquire("risk", "2024-01-01", "w1", 60)
        assert lease is not None
        writer = backend.open_writer(lease, "per_user")
        writer.add({"u1": 1.5})
        record = writer.commit(composite_hash="c")
    with SqliteBackend(path) as backend:
        assert backend.get_cell("risk", "2024-01-01") == record
        assert backend.read_result("risk", "2024-01-01") == {"u1": 1.5}


def test_other_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cache.db"
    with SqliteBackend(path) as backend:
        backend._conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(StorageError, match=r"cache\.db: cache schema version 99 is not the version 2"):
        SqliteBackend(path)


def test_a_file_that_is_not_sqlite_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "cache.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StorageError, match=r"cache\.db: not a usable btbuild cache"):
        SqliteBackend(path)


def test_unwritable_location_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StorageError, match="cannot open the cache"):
        SqliteBackend(blocker / "cache.db")
