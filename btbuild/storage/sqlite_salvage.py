"""Salvage of a damaged SQLite cache file: a fresh file holding every row still readable,
table by table, of which only the cells whose results check out are kept.

Under the exclusive repair lock (btbuild/storage/sqlite_files.py): the damaged file and its
``-wal`` are copied (a private snapshot: other builders may still write to the originals; a
file cut short is padded to the size its header claims, so the pages before the cut stay
readable), every table of the copy is read by rowid ranges, stepping over unreadable pages
(:func:`rows`), into a new file, which is then checked like a build checks (each record
decoded in full, its seal, every shard against its digest: ``check_results``); a cell that
fails is dropped (it rebuilds as missing), so are orphan shards. Only a complete, fsynced
file is swapped in. A damaged header or schema page leaves nothing to read: the fresh cache
starts empty and the report says so. Salvage is an optimization: when in doubt, drop.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from btbuild.errors import StorageError
from btbuild.storage import sqlite_files as files
from btbuild.storage.outbox import PendingAlert
from btbuild.storage.records import RUNNING, CellRecord, RunRecord
from btbuild.storage.sqlite_scan import rows, text_or_undecodable
from btbuild.storage.sqlite_schema import (
    _COLUMN_FIELDS,
    _STATUSES,
    _UPSERT_CELL,
    SCHEMA_VERSION,
    _Db,
    _decode_into,
    create_schema,
)

_BATCH = 2000


@dataclass
class Salvage:
    """What a repair did; ``lines()`` for text output, ``to_json()`` for JSON."""

    path: Path
    moved_to: Path | None = None  # the damaged file, kept for forensics (with -wal, -shm)
    already_replaced: bool = False  # another process repaired it first: nothing done here
    nothing_readable: str | None = None  # why nothing could be salvaged
    cells_kept: int = 0
    cells_dropped: int = 0  # unreadable, without a result, or failing the checks
    shards_kept: int = 0
    shards_dropped: int = 0  # unreadable or of no kept cell
    rows: dict[str, int] = field(default_factory=dict)  # runs, sim_hashes, equivalences
    skipped: dict[str, int] = field(default_factory=dict)  # table -> unreadable stretches
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "moved_to": None if self.moved_to is None else str(self.moved_to),
            "already_replaced": self.already_replaced,
            "nothing_readable": self.nothing_readable,
            "cells_kept": self.cells_kept,
            "cells_dropped": self.cells_dropped,
            "shards_kept": self.shards_kept,
            "shards_dropped": self.shards_dropped,
            "rows": dict(self.rows),
            "unreadable_stretches": dict(self.skipped),
            "seconds": round(self.seconds, 3),
            "summary": self.describe(),
        }

    def describe(self) -> str:
        """One line: where the damaged file went and what was salvaged."""
        if self.already_replaced:
            return f"{self.path}: already repaired by another process"
        first = f"{self.path}: damaged file moved aside to {self.moved_to}"
        if self.nothing_readable is not None:
            return (
                f"{first}; nothing could be salvaged ({self.nothing_readable}): the cache "
                "starts empty"
            )
        others = ", ".join(f"{count} {table}" for table, count in self.rows.items())
        return (
            f"{first}; salvaged {self.cells_kept} cells ({self.cells_dropped} dropped: they "
            f"rebuild), {self.shards_kept} shards ({self.shards_dropped} dropped), {others} "
            f"in {self.seconds:.1f} s"
        )


def repair(path: Path, found: files.FileId | None) -> Salvage:
    """Repair the file at ``path`` found damaged as ``found`` ((device, inode); None: the
    file there now). Waits for a repair running elsewhere; if that one replaced the file
    meanwhile, does nothing (``already_replaced``)."""
    try:
        return _repair(path, found)
    except (OSError, sqlite3.Error) as exc:  # a full disk, a folder that cannot be written
        problem = files.describe(exc) if isinstance(exc, sqlite3.Error) else str(exc)
        raise StorageError(f"{path}: cannot repair the damaged cache file: {problem}") from None


def _repair(path: Path, found: files.FileId | None) -> Salvage:
    started = time.monotonic()
    with files.repair_lock(path, exclusive=True):
        files.finish_interrupted_swap(path)
        files.remove_leftovers(path)
        current = files.file_id(path)
        if current is None or (found is not None and current != found):
            return Salvage(path, already_replaced=True)
        files.report_damage(path, current)  # a kill from here on: the next build repairs
        partial = files.sibling(path, ".salvage-partial")
        source = files.sibling(path, ".salvage-source")
        try:
            _snapshot(path, source)
            result = Salvage(path)
            _copy(source, partial, result)
            _check(partial, result)
            files.fsync_path(partial)
            ready = files.sibling(path, ".salvaged")
            partial.replace(ready)
            result.moved_to = files.swap_in(path, ready)
            files.clear_damage_report(path)
        finally:
            files.remove(source)
            files.remove(partial)
    result.seconds = time.monotonic() - started
    return result


def _snapshot(path: Path, source: Path) -> None:
    """Copy the file and its ``-wal`` (committed transactions not yet checkpointed are part
    of the cache); pad a file cut short to the page count its header claims."""
    files.remove(source)
    shutil.copyfile(path, source)
    wal = Path(f"{path}-wal")
    if wal.exists():
        shutil.copyfile(wal, f"{source}-wal")
    with open(source, "r+b") as copy:
        header = copy.read(100)
        if len(header) == 100 and header.startswith(b"SQLite format 3\0"):
            page_size = int.from_bytes(header[16:18], "big")
            page_size = 65536 if page_size == 1 else page_size
            claimed = int.from_bytes(header[28:32], "big") * page_size
            if claimed > copy.seek(0, 2) and claimed < 2**40:
                copy.truncate(claimed)  # zeros: those pages read as damaged, the rest is read


def _copy(source: Path, partial: Path, result: Salvage) -> None:
    src = sqlite3.connect(source, isolation_level=None)
    src.text_factory = (
        text_or_undecodable  # one undecodable value drops its row, not the whole scan
    )
    dst = sqlite3.connect(partial, isolation_level=None)
    try:
        src.execute("PRAGMA cell_size_check = ON")  # more damage found as errors, not garbage
        dst.execute("PRAGMA synchronous = OFF")  # fsynced once, when complete
        dst.execute("BEGIN")
        create_schema(_Db(dst), partial)
        result.nothing_readable = _unreadable_schema(src)
        if result.nothing_readable is None:
            for table, copier in _COPIERS.items():
                kept = copier(src, dst, result)
                if table not in ("cells", "shards"):
                    result.rows[table] = kept
        dst.execute("COMMIT")
    finally:
        src.close()
        dst.close()


def _unreadable_schema(src: sqlite3.Connection) -> str | None:
    """Why nothing is readable (a damaged header or schema page, another layout), or None."""
    try:
        src.execute("SELECT name, rootpage FROM sqlite_master").fetchall()
    except sqlite3.DatabaseError as exc:
        return f"its header or schema is unreadable: {files.describe(exc)}"
    try:
        version = src.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
    except sqlite3.DatabaseError:
        return None  # the meta table's page is damaged: the tables may still be readable
    if version and str(version[0][0]) != str(SCHEMA_VERSION):
        return f"schema version {version[0][0]}, not {SCHEMA_VERSION}"
    return None


# ---------------------------------------------------------------------- one copier per table


_NONE = type(None)
_TEXT, _MAYBE, _INT, _REAL = (str,), (str, _NONE), (int,), (float, int)
# the column types of a cells row as STRICT stores them (garbage on a page may hold others)
_CELL_TYPES = (
    _TEXT,  # target
    _TEXT,  # date
    _TEXT,  # status
    _MAYBE,  # category
    _MAYBE,  # generation
    _MAYBE,  # lease_generation
    _INT,  # attempts
    _REAL,  # lease_expires
    _REAL,  # started_at
    _INT,  # shard_count
    _INT,  # item_count
    _REAL,  # updated_at
    _MAYBE,  # composite_hash
    _MAYBE,  # result_hash
    _MAYBE,  # checksums
    _MAYBE,  # attempt_key
    _TEXT,  # data
)
_LEASE_EXPIRES = _COLUMN_FIELDS.index("lease_expires")


def _cell_row_ok(row: tuple[Any, ...]) -> bool:
    """What the read query's ``_VALID`` checks, on a row read without it: column types, a
    known status, counts >= 0, finite times (``data`` is checked when decoded)."""
    if len(row) != len(_CELL_TYPES) or not all(
        type(value) in kinds for value, kinds in zip(row, _CELL_TYPES, strict=True)
    ):
        return False
    return (
        row[2] in _STATUSES
        and min(row[6], row[9], row[10]) >= 0
        and all(abs(row[index]) < 1e300 for index in (7, 8, 11))  # NaN fails too
    )


def _cells(src: sqlite3.Connection, dst: sqlite3.Connection, result: Salvage) -> int:
    """Readable records that claim a result (the others would decide nothing the checks can
    vouch for: failures and retention are decided again). A running attempt's lease is
    expired: its holder writes to the moved-aside file, so it is a zombie here. Rows are
    decoded in batches of distinct keys (one ``json.loads`` each) and stored as read."""
    kept = 0
    pending: list[tuple[Any, ...]] = []
    keys: set[tuple[str, str]] = set()

    def flush() -> None:
        nonlocal kept
        found: dict[tuple[str, str], CellRecord] = {}
        _decode_into(found, pending)
        batch = []
        for row in pending:
            record = found.get((row[0], row[1]))
            if record is None or record.generation is None:
                result.cells_dropped += 1
            elif record.status == RUNNING:
                batch.append((*row[:_LEASE_EXPIRES], 0.0, *row[_LEASE_EXPIRES + 1 :]))
            else:
                batch.append(row)
        dst.executemany(_UPSERT_CELL, batch)  # rowid order: a later write of a key wins
        kept += len(batch)
        pending.clear()
        keys.clear()

    columns = ", ".join((*_COLUMN_FIELDS, "data"))
    for row in rows(src, "cells", columns, result.skipped):
        if not _cell_row_ok(row):
            result.cells_dropped += 1
            continue
        if (row[0], row[1]) in keys or len(pending) >= _BATCH:
            flush()
        pending.append(row)
        keys.add((row[0], row[1]))
    flush()
    return kept


def _shards(src: sqlite3.Connection, dst: sqlite3.Connection, result: Salvage) -> int:
    types = (str, str, str, int, bytes)
    return _plain(
        src, dst, result, "shards", "target, date, generation, idx, data", types, "OR REPLACE"
    )


def _runs(src: sqlite3.Connection, dst: sqlite3.Connection, result: Salvage) -> int:
    def readable(row: tuple[Any, ...]) -> bool:
        try:
            run = RunRecord.from_dict(json.loads(row[4]))
        except (ValueError, TypeError, KeyError):
            return False
        return (run.run_id, run.target, run.date) == row[:3]

    types = (str, str, str, float, str)
    columns = "run_id, target, date, started, data"
    return _plain(src, dst, result, "runs", columns, types, "OR REPLACE", readable)


def _sim_hashes(src: sqlite3.Connection, dst: sqlite3.Connection, result: Salvage) -> int:
    columns = "code_hash, fabricator_version, sim_hash"
    return _plain(src, dst, result, "sim_hashes", columns, (str, str, str), "OR REPLACE")


def _equivalences(src: sqlite3.Connection, dst: sqlite3.Connection, result: Salvage) -> int:
    columns = "id, target, old_code_hash, new_code_hash, sim_hash, date, recorded_at"
    types = (int, str, str, str, str, str, float)
    return _plain(src, dst, result, "equivalences", columns, types, "OR IGNORE")


def _plain(
    src: sqlite3.Connection,
    dst: sqlite3.Connection,
    result: Salvage,
    table: str,
    columns: str,
    types: tuple[type, ...],
    conflict: str,
    readable: Callable[[tuple[Any, ...]], bool] | None = None,
) -> int:
    """Copy the rows whose values have the column types (ints are taken for floats)."""
    sql = f"INSERT {conflict} INTO {table} ({columns}) VALUES ({', '.join('?' * len(types))})"
    kept = dropped = 0
    batch: list[tuple[Any, ...]] = []
    for row in rows(src, table, columns, result.skipped):
        if not all(_typed(value, kind) for value, kind in zip(row, types, strict=True)) or (
            readable is not None and not readable(row)
        ):
            dropped += 1
            continue
        batch.append(row)
        kept += 1
        if len(batch) >= _BATCH:
            dst.executemany(sql, batch)
            batch.clear()
    dst.executemany(sql, batch)
    if table == "shards":
        result.shards_dropped += dropped
    return kept


def _typed(value: Any, kind: type) -> bool:
    if kind is float:
        return type(value) in (float, int)
    return type(value) is kind


def _alert_outbox(src: sqlite3.Connection, dst: sqlite3.Connection, result: Salvage) -> int:
    """Pending alerts are kept (each announces a commit that happened: published at least
    once); an unreadable one is lost with its page."""

    def readable(row: tuple[Any, ...]) -> bool:
        alert = PendingAlert.from_json(row[1])
        return alert is not None and alert.key == row[0]

    return _plain(src, dst, result, "alert_outbox", "id, data", (str, str), "OR REPLACE", readable)


_COPIERS = {
    "cells": _cells,
    "shards": _shards,
    "runs": _runs,
    "sim_hashes": _sim_hashes,
    "equivalences": _equivalences,
    "alert_outbox": _alert_outbox,
}


def _check(partial: Path, result: Salvage) -> None:
    """The build's integrity check on every salvaged cell; the damaged ones and orphan
    shards are dropped, then those cells are checked again (they must be gone)."""
    from btbuild.storage.sqlite import SqliteBackend

    backend = SqliteBackend(partial, guard=False)
    try:
        targets = [
            name for (name,) in backend._query("list cells", "SELECT DISTINCT target FROM cells")
        ]
        dates = [day for (day,) in backend._query("list cells", "SELECT DISTINCT date FROM cells")]
        # the joined scan checks each record's columns, seal and every shard's digest (a
        # legacy record: its result hash); ``_cells`` decoded every record in full already,
        # which is what ``thorough`` adds (and summary = record holds: one row is both)
        damaged = backend.check_results(targets, dates)
        for key in damaged:
            backend.forget_result(*key)
        result.cells_dropped += len(damaged)
        again = sorted({key[0] for key in damaged}), sorted({key[1] for key in damaged})
        if damaged and backend.check_results(*again, thorough=True):
            with backend._transaction("drop the salvaged cells") as conn:  # correctness first
                result.cells_dropped += conn.execute("DELETE FROM cells").rowcount
        result.shards_dropped += backend.collect_garbage()
        result.cells_kept = backend._query("count cells", "SELECT count(*) FROM cells")[0][0]
        result.shards_kept = backend._query("count shards", "SELECT count(*) FROM shards")[0][0]
    finally:
        backend.close()
