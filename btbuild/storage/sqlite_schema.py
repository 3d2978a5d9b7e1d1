"""The SQLite backend's schema and row codec: tables, migrations of older files, and the
hot batched decode of cell rows (btbuild/storage/sqlite.py holds the backend itself)."""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from btbuild.errors import StorageError
from btbuild.storage import records as rec
from btbuild.storage.records import CellRecord

SCHEMA_VERSION = 4
BUSY_TIMEOUT_SECONDS = 60.0
_DECODE_BATCH = 2000  # rows decoded by one json.loads
_CHUNK = 500  # values per IN list: well under SQLite's variable limit, even old builds (999)

# Schema 2 keeps each scalar field of a record in its own typed column (STRICT: SQLite refuses
# a wrong type on write, and the read query filters rows whose types are wrong anyway) and the
# remaining strings and the three small dicts in ONE compact JSON array, ``data``. A batched
# read decodes the ``data`` of hundreds of rows with a single ``json.loads`` and builds records
# without per-field Python checks: that is what makes 365k rows fast.
# Schema 3 moved composite_hash and result_hash into columns: a no-op build compares them
# for every cell (``get_cell_summaries``) without decoding ``data`` at all.
_COLUMN_FIELDS = (
    "target",
    "date",
    "status",
    "category",
    "generation",
    "lease_generation",
    "attempts",
    "lease_expires",
    "started_at",
    "shard_count",
    "item_count",
    "updated_at",
    "composite_hash",
    "result_hash",
    "checksums",
    "attempt_key",
)
_DATA_FIELDS = (
    "code_hash",
    "sim_hash",
    "kind",
    "lease_owner",
    "last_error",
    "components",
    "dep_results",
    "root_fingerprints",
)
_COLUMN_FIELDS_V2 = _COLUMN_FIELDS[:-4]
_DATA_FIELDS_V2 = (
    "composite_hash",
    "code_hash",
    "sim_hash",
    "result_hash",
    "kind",
    "lease_owner",
    "last_error",
    "components",
    "dep_results",
    "root_fingerprints",
)
_CREATE_CELLS = """
CREATE TABLE IF NOT EXISTS cells (
    target TEXT NOT NULL,
    date TEXT NOT NULL,
    status TEXT NOT NULL,
    category TEXT,
    generation TEXT,
    lease_generation TEXT,
    attempts INTEGER NOT NULL,
    lease_expires REAL NOT NULL,
    started_at REAL NOT NULL,
    shard_count INTEGER NOT NULL,
    item_count INTEGER NOT NULL,
    updated_at REAL NOT NULL,
    composite_hash TEXT,
    result_hash TEXT,
    data TEXT NOT NULL,
    checksums TEXT,
    attempt_key TEXT,
    PRIMARY KEY (target, date)
) STRICT
"""
# Rows whose columns do not hold what a CellRecord needs are filtered out in C: a miss. The
# check on ``data`` (one complete JSON value per row) also makes the batched decode of many
# rows joined by commas unambiguous.
_STATUSES = frozenset(rec.STATUSES)
_STATUSES_SQL = "(" + ", ".join(f"'{status}'" for status in rec.STATUSES) + ")"
_VALID = (
    f"status IN {_STATUSES_SQL}"
    " AND attempts >= 0 AND shard_count >= 0 AND item_count >= 0"
    " AND abs(lease_expires) < 1e300 AND abs(started_at) < 1e300 AND abs(updated_at) < 1e300"
    " AND json_valid(data)"
)
_SELECT_CELLS = f"SELECT {', '.join(_COLUMN_FIELDS)}, data FROM cells WHERE {_VALID}"
_UPSERT_CELL = (
    f"INSERT OR REPLACE INTO cells ({', '.join(_COLUMN_FIELDS)}, data)"
    f" VALUES ({', '.join('?' * (len(_COLUMN_FIELDS) + 1))})"
)
_DUMPS = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, check_circular=False).encode
_STR = str
_NONE = type(None)
# Every valid combination of the types in ``data``: the five optional strings, then 3 dicts.
_DATA_TYPES = frozenset(
    (*optional, dict, dict, dict) for optional in itertools.product((_STR, _NONE), repeat=5)
)
_KINDS = frozenset((None, *rec.KINDS))
_join = "".join
_new = object.__new__
_set_dict = object.__setattr__


# The tables as sqlite-utils created them (the layout of existing caches); sqlite-utils is not
# imported: where pandas is installed it imports pandas, 0.1-0.5 s for every command.
_TABLES = (
    "CREATE TABLE IF NOT EXISTS [shards] ([target] TEXT, [date] TEXT, [generation] TEXT, "
    "[idx] INTEGER, [data] BLOB, PRIMARY KEY ([target], [date], [generation], [idx]))",
    "CREATE TABLE IF NOT EXISTS [runs] ([run_id] TEXT PRIMARY KEY, [target] TEXT, [date] TEXT, "
    "[started] REAL, [data] TEXT)",
    "CREATE TABLE IF NOT EXISTS [sim_hashes] ([code_hash] TEXT, [fabricator_version] TEXT, "
    "[sim_hash] TEXT, PRIMARY KEY ([code_hash], [fabricator_version]))",
    "CREATE TABLE IF NOT EXISTS [equivalences] ([id] INTEGER PRIMARY KEY, [target] TEXT, "
    "[old_code_hash] TEXT, [new_code_hash] TEXT, [sim_hash] TEXT, [date] TEXT, [recorded_at] REAL)",
    # pending alerts (btbuild/storage/outbox.py), written in the commit's transaction
    "CREATE TABLE IF NOT EXISTS [alert_outbox] ([id] TEXT PRIMARY KEY, [data] TEXT)",
)


class _Db:
    """The little of a database handle the schema code needs (``execute``, ``conn``)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    @property
    def journal_mode(self) -> str:
        return str(self.conn.execute("PRAGMA journal_mode").fetchone()[0])


def _row(record: CellRecord) -> tuple[Any, ...]:
    values = [getattr(record, name) for name in _COLUMN_FIELDS]
    for index in (7, 8, 11):  # REAL columns: an int time is stored (and read back) as a float
        values[index] = float(values[index])
    data = _DUMPS([getattr(record, name) for name in _DATA_FIELDS])
    return (*values, data)


def _build(row: Sequence[Any], data: Any) -> CellRecord | None:
    """A record from a row that passed ``_VALID`` and its decoded ``data``; None if malformed.

    The columns are already type-checked by SQLite; ``data`` is checked here with a handful of
    C-level operations (a type signature lookup, ``str.join`` refusing non-strings)."""
    found: dict[tuple[str, str], CellRecord] = {}
    _build_into(found, [row], [data])
    return found.get((row[0], row[1]))


def _build_into(
    found: dict[tuple[str, str], CellRecord], rows: Sequence[Any], decoded: Sequence[Any]
) -> None:
    """The hot loop of batched reads: every line here runs once per record."""
    for row, data in zip(rows, decoded, strict=True):
        try:
            if (
                type(data) is not list
                or tuple(map(type, data)) not in _DATA_TYPES
                or data[2] not in _KINDS
            ):
                continue
            components, deps, roots = data[5], data[6], data[7]
            _join(
                [*components, *components.values(), *deps, *deps.values(), *roots, *roots.values()]
            )
        except TypeError:
            continue  # a non-string key or value inside one of the dicts: a miss
        fields = dict(zip(_COLUMN_FIELDS, row[:-1], strict=True))
        fields.update(zip(_DATA_FIELDS, data, strict=True))
        record = _new(CellRecord)
        _set_dict(record, "__dict__", fields)  # frozen: bypass __setattr__ once, no per-field cost
        found[row[0], row[1]] = record


def _record(row: Sequence[Any]) -> CellRecord | None:
    try:
        data = json.loads(row[-1])
    except (ValueError, TypeError):
        return None  # corrupt row: a miss
    return _build(row, data)


def _decode_into(found: dict[tuple[str, str], CellRecord], rows: list[Any]) -> None:
    """Decode many rows with one ``json.loads`` (its key memo is shared by every row); a batch
    that does not decode falls back to one row at a time, so a corrupt row is a lone miss."""
    try:
        decoded = json.loads("[" + ",".join([row[-1] for row in rows]) + "]")
    except (ValueError, TypeError):
        decoded = None
    if type(decoded) is list and len(decoded) == len(rows):
        _build_into(found, rows, decoded)
        return
    for row in rows:
        record = _record(row)
        if record is not None:
            found[row[0], row[1]] = record


def create_schema(db: _Db, path: Path) -> None:
    """Create the tables, or upgrade a schema 1 to 3 file, in the caller's transaction."""
    db.execute("CREATE TABLE IF NOT EXISTS [meta] ([key] TEXT PRIMARY KEY, [value] TEXT)")
    version = schema_version(db)
    if version == "1":
        _migrate_from_v1(db)
    elif version == "2":
        _migrate_from_v2(db)
    elif version == "3":  # schema 4 added two columns (NULL: a legacy record)
        db.execute("ALTER TABLE cells ADD COLUMN checksums TEXT")
        db.execute("ALTER TABLE cells ADD COLUMN attempt_key TEXT")
    db.execute(_CREATE_CELLS)
    for table in _TABLES:
        db.execute(table)
    db.execute("CREATE INDEX IF NOT EXISTS runs_by_target ON runs (target, started)")
    db.execute("CREATE INDEX IF NOT EXISTS runs_by_start ON runs (started)")
    if version in (None, "1", "2", "3"):
        db.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
            [str(SCHEMA_VERSION)],
        )
    elif version != str(SCHEMA_VERSION):
        raise StorageError(
            f"{path}: cache schema version {version} is not the version "
            f"{SCHEMA_VERSION} this btbuild writes (it upgrades versions 1 to 3): use the "
            "btbuild that wrote it, or point [storage] path at another file for a separate cache"
        )


def schema_version(db: _Db) -> str | None:
    row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return None if row is None else str(row[0])


def _migrate_from_v1(db: _Db) -> None:
    """Schema 1 kept the whole record as one JSON array in ``cells.data``. Rewrite each
    readable row in the schema 2 layout (shards are unchanged, so committed results stay
    valid); an unreadable row is dropped, which is what reading it was anyway: a miss."""
    old = db.execute("SELECT data FROM cells").fetchall()
    db.execute("DROP TABLE cells")
    db.execute(_CREATE_CELLS)
    rows = []
    for (data,) in old:
        try:
            values = json.loads(data)
            if type(values) is not list or len(values) != len(rec.CELL_FIELD_ORDER):
                continue
            record = CellRecord.from_dict(
                dict(zip(rec.CELL_FIELD_ORDER, values, strict=True))
            )  # every field checked
        except (ValueError, TypeError):
            continue
        rows.append(_row(record))
    db.conn.executemany(_UPSERT_CELL, rows)


def _migrate_from_v2(db: _Db) -> None:
    """Schema 2 kept composite_hash and result_hash inside ``data``: move them to their
    columns. Every record is re-checked on the way; an unreadable one is dropped (a miss)."""
    old = db.execute(f"SELECT {', '.join(_COLUMN_FIELDS_V2)}, data FROM cells").fetchall()
    db.execute("DROP TABLE cells")
    db.execute(_CREATE_CELLS)
    rows = []
    for row in old:
        try:
            fields = dict(zip(_COLUMN_FIELDS_V2, row[:-1], strict=True))
            values = json.loads(row[-1])
            if type(values) is not list or len(values) != len(_DATA_FIELDS_V2):
                continue
            fields.update(zip(_DATA_FIELDS_V2, values, strict=True))
            record = CellRecord.from_dict(fields)
        except (ValueError, TypeError):
            continue
        rows.append(_row(record))
    db.conn.executemany(_UPSERT_CELL, rows)
