"""Reading every row of a damaged SQLite table that can still be read (the salvage's scan:
btbuild/storage/sqlite_salvage.py)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

from btbuild.storage import sqlite_files as files

_LOWEST = -(2**63)
_HIGHEST = 2**63 - 1


class _Undecodable:
    """A text value whose bytes are not UTF-8 (garbage): its row is dropped."""


UNDECODABLE = _Undecodable()


def text_or_undecodable(raw: bytes) -> str | _Undecodable:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return UNDECODABLE


def rows(
    src: sqlite3.Connection, table: str, columns: str, skipped: dict[str, int]
) -> Iterator[tuple[Any, ...]]:
    """Every readable row of ``table`` in rowid order (``columns``, without the rowid).
    A scan that meets a damaged page resumes at the first row past it whose seek reads
    (:func:`_next_readable`), so one bad page costs the rows on it (a bad interior page: its
    subtree). Counts the stretches stepped over in ``skipped[table]``."""
    low = _LOWEST
    while low <= _HIGHEST:
        try:
            cursor = src.execute(
                f"SELECT rowid, {columns} FROM {table} WHERE rowid >= ? ORDER BY rowid", [low]
            )
            for row in cursor:
                if row[0] >= low:  # garbage on a page may disorder rowids: only move on
                    low = row[0] + 1
                    yield row[1:]
            return
        except sqlite3.DatabaseError as exc:
            if not files.is_corruption(exc):
                return  # another layout (a missing column): the table is not salvaged
            skipped[table] = skipped.get(table, 0) + 1
            found = None if low > _HIGHEST else _next_readable(src, table, columns, low)
            if found is None:
                return
            low = found[0] + 1  # at least one row further each time: the loop ends
            yield found[1:]


def _next_readable(
    src: sqlite3.Connection, table: str, columns: str, low: int
) -> tuple[Any, ...] | None:
    """The first row (rowid first) found by a seek to the smallest rowid >= ``low`` whose
    seek reads: tried at ``low``, then at doubling distances, then bisected. None when no
    seek reads up to the highest rowid, or the seek that reads finds no row."""
    sql = f"SELECT rowid, {columns} FROM {table} WHERE rowid >= ? ORDER BY rowid LIMIT 1"

    def seek(rowid: int) -> list[tuple[Any, ...]] | None:
        try:
            return src.execute(sql, [rowid]).fetchall()
        except sqlite3.DatabaseError:
            return None

    bad, step, good = low - 1, 1, low
    while (found := seek(good)) is None:  # double the distance until a seek reads
        if good == _HIGHEST:
            return None
        bad, good, step = good, min(good + step, _HIGHEST), step * 2
    while good - bad > 1:  # then bisect down to the first rowid whose seek reads
        middle = (bad + good) // 2
        if (at_middle := seek(middle)) is None:
            bad = middle
        else:
            good, found = middle, at_middle
    return found[0] if found else None
