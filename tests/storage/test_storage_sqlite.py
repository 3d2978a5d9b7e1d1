"""SQLite specifics: opening, schema versions, the factory."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from btbuild.errors import ConfigError, StorageError
from btbuild.storage import MemoryBackend, SqliteBackend, open_backend
from btbuild.storage.codec import encode_shards
from btbuild.storage.sqlite import SCHEMA_VERSION
from tests.storage.test_storage_contract import commit_per_user


def test_open_backend_factory(tmp_path: Path) -> None:
    with open_backend("sqlite", path=tmp_path / "a" / "b" / "cache.db") as backend:
        assert isinstance(backend, SqliteBackend)
        assert backend.db.journal_mode == "wal"
    assert (tmp_path / "a" / "b" / "cache.db").exists()
    assert isinstance(open_backend("memory"), MemoryBackend)
    with pytest.raises(
        ConfigError, match=r"'postgres' is unknown; expected one of (firestore, )?memory, sqlite"
    ):
        open_backend("postgres")
    with pytest.raises(ConfigError, match="do not fit backend 'memory'"):
        open_backend("memory", path="x.db")


def test_results_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "cache.db"
    with SqliteBackend(path) as backend:
        record = commit_per_user(backend, "risk", "2024-01-01", {"u1": 1.5}, composite_hash="c")
    with SqliteBackend(path) as backend:
        assert backend.get_cell("risk", "2024-01-01") == record
        assert backend.read_result("risk", "2024-01-01") == {"u1": 1.5}


def test_other_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cache.db"
    with SqliteBackend(path) as backend:
        backend._conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(
        StorageError,
        match=rf"cache\.db: cache schema version 99 is not the version {SCHEMA_VERSION}",
    ):
        SqliteBackend(path)


def test_a_file_that_is_not_sqlite_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "cache.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StorageError, match=r"cache\.db: not a SQLite btbuild cache"):
        SqliteBackend(path)


def test_unwritable_location_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StorageError, match="cannot open the cache"):
        SqliteBackend(blocker / "cache.db")


def test_schema_1_cache_is_migrated_and_keeps_its_results(tmp_path: Path) -> None:
    import json
    import sqlite3

    from btbuild.storage import records as rec

    path = tmp_path / "cache.db"
    with SqliteBackend(path) as backend:  # write a result, then turn the file into schema 1
        record = commit_per_user(
            backend,
            "risk",
            "2024-01-01",
            {"u1": 1.5},
            composite_hash="c",
            components={"code": "k"},
            dep_results={"//p:x": "r"},
        )
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("DROP TABLE cells")
    conn.execute(
        "CREATE TABLE cells (target TEXT, date TEXT, status TEXT NOT NULL, category TEXT, generation TEXT,"
        " lease_generation TEXT, data TEXT, PRIMARY KEY (target, date))"
    )
    good = json.dumps(rec.cell_to_row(record))
    bad = json.dumps(rec.cell_to_row(record)).replace('"committed"', '"exploded"')
    conn.executemany(
        "INSERT INTO cells VALUES (?, ?, 'committed', NULL, ?, NULL, ?)",
        [
            ("risk", "2024-01-01", record.generation, good),
            ("risk", "2024-01-02", "g", bad),
            ("risk", "2024-01-03", "g", '["half'),
        ],
    )
    conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    conn.close()
    with SqliteBackend(path) as backend:
        assert backend.get_cells(["risk"], ["2024-01-01", "2024-01-02", "2024-01-03"]) == {
            ("risk", "2024-01-01"): record
        }
        assert backend.read_result("risk", "2024-01-01") == {"u1": 1.5}
        assert backend._conn.execute(
            "SELECT value FROM meta WHERE key = 'schema_version'"
        ).fetchone() == (str(SCHEMA_VERSION),)


def test_schema_2_cache_is_migrated_and_keeps_its_results(tmp_path: Path) -> None:
    """Schema 2 kept composite_hash and result_hash inside the data array."""
    import json
    import sqlite3

    from btbuild.storage.sqlite import _COLUMN_FIELDS_V2, _DATA_FIELDS_V2

    path = tmp_path / "cache.db"
    with SqliteBackend(path) as backend:
        record = commit_per_user(
            backend,
            "risk",
            "2024-01-01",
            {"u1": 1.5},
            composite_hash="c",
            components={"code": "k"},
            dep_results={"//p:x": "r"},
        )
    conn = sqlite3.connect(path, isolation_level=None)
    columns = [getattr(record, name) for name in _COLUMN_FIELDS_V2]
    data = json.dumps([getattr(record, name) for name in _DATA_FIELDS_V2])
    conn.execute("DROP TABLE cells")
    conn.execute(
        f"CREATE TABLE cells ({', '.join(_COLUMN_FIELDS_V2)}, data TEXT, PRIMARY KEY (target, date))"
    )
    marks = ", ".join("?" * (len(columns) + 1))
    conn.execute(f"INSERT INTO cells VALUES ({marks})", [*columns, data])
    conn.execute(
        f"INSERT INTO cells VALUES ({marks})", [*columns[:1], "2024-01-02", *columns[2:], '["half']
    )
    conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    conn.close()
    with SqliteBackend(path) as backend:
        assert backend.get_cells(["risk"], ["2024-01-01", "2024-01-02"]) == {
            ("risk", "2024-01-01"): replace(record, checksums=None)
        }
        assert backend.get_cell_summaries(["risk"], ["2024-01-01", "2024-01-02"]) == {
            ("risk", "2024-01-01"): ("committed", "c", record.result_hash, record.generation, None)
        }
        assert backend.read_result("risk", "2024-01-01") == {"u1": 1.5}


def test_schema_3_cache_gets_a_checksums_column_and_its_results_stay_valid(
    tmp_path: Path,
) -> None:
    """Schema 3 had no checksums: its records are legacy ones, checked by their result hash."""
    import sqlite3

    path = tmp_path / "cache.db"
    with SqliteBackend(path) as backend:
        record = commit_per_user(backend, "risk", "2024-01-01", {"u1": 1.5}, composite_hash="c")
        tampered = commit_per_user(backend, "risk", "2024-01-02", {"u1": 2.5}, composite_hash="c")
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("ALTER TABLE cells DROP COLUMN checksums")
    conn.execute("ALTER TABLE cells DROP COLUMN attempt_key")
    conn.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    conn.execute(
        "UPDATE shards SET data = ? WHERE date = '2024-01-02'",
        [encode_shards(b'["u1",3.5]\n')[0]],
    )
    conn.close()
    with SqliteBackend(path) as backend:
        assert backend.get_cell("risk", "2024-01-01") == replace(record, checksums=None)
        assert backend.read_result("risk", "2024-01-01") == {"u1": 1.5}
        assert backend.check_results(["risk"], ["2024-01-01", "2024-01-02"]) == {
            ("risk", "2024-01-02"): "its shards do not hold its result (result hash mismatch)"
        }
        assert tampered.generation is not None


def test_rows_with_wrong_types_are_misses(tmp_path: Path) -> None:
    with SqliteBackend(tmp_path / "cache.db") as backend:
        for day in ("2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"):
            backend.put_cell_status("risk", day, "impossible", components={"a": "b"})
        conn = backend._conn
        conn.execute(
            "UPDATE cells SET data = '[1,null,null,null,null,null,null,{},{},{}]' WHERE date = '2024-01-01'"
        )
        conn.execute(
            "UPDATE cells SET data = '[null,null,null,null,null,null,null,{\"a\":1},{},{}]' WHERE date = '2024-01-02'"
        )
        conn.execute(
            "UPDATE cells SET data = '[null,null,null,null,\"weird\",null,null,{},{},{}]' WHERE date = '2024-01-03'"
        )
        found = backend.get_cells(
            ["risk"], ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"]
        )
        assert list(found) == [("risk", "2024-01-04")]
        assert found[("risk", "2024-01-04")].components == {"a": "b"}
        with pytest.raises(sqlite3_error()):
            conn.execute(
                "UPDATE cells SET attempts = 'x' WHERE date = '2024-01-04'"
            )  # STRICT refuses it


def sqlite3_error() -> type[Exception]:
    import sqlite3

    return sqlite3.Error


def test_a_record_of_the_wrong_shape_is_found_by_a_thorough_check(tmp_path: Path) -> None:
    """Builds check records lean (valid JSON, seal, shards); ``fsck`` (thorough) also checks
    the shape of ``data``, as a full read does. Either way it never reads as no result."""
    from btbuild.errors import DamagedResult

    with SqliteBackend(tmp_path / "cache.db") as backend:
        record = commit_per_user(backend, "risk", "2024-01-01", {"u1": 1})
        backend._conn.execute(  # a number where a components value must be a string
            """UPDATE cells SET data = '[null,null,"per_user",null,null,{"code":1},{},{}]'"""
        )
        assert backend.check_results(["risk"], ["2024-01-01"]) == {}
        assert backend.check_results(["risk"], ["2024-01-01"], thorough=True) == {
            ("risk", "2024-01-01"): "its record is unreadable"
        }
        with pytest.raises(DamagedResult):
            backend.read_expected("risk", "2024-01-01", record.result_hash)
