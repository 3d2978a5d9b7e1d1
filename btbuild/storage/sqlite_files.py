"""The SQLite cache as a file: corruption told apart from other errors, the repair lock, the
damage marker, and the swap of a salvaged file into place (the salvage itself is in
btbuild/storage/sqlite_salvage.py; see docs/storage.md, "Damaged cache files").

Files next to ``cache.db``:

* ``cache.db.repair-lock``: ``flock``-ed shared while a connection opens (so no connection
  is ever opened on a half-swapped path) and exclusive while a repair runs (two repairs never
  overlap; the second one finds the file already replaced and does nothing);
* ``cache.db.damage-found``: written by any process that met the damage (``<device>:<inode>``
  of the damaged file), so the build that runs next repairs it first, and a build whose
  ``--jobs`` workers met it repairs after its round. A marker naming another file is stale;
* ``cache.db.damaged-<UTC time>`` (and its ``-wal``, ``-shm``): a damaged file moved aside,
  kept for forensics;
* ``cache.db.salvaged``: a complete, fsynced salvaged file waiting for its swap (only left
  when a repair is killed between moving the damaged file aside and moving this one in; the
  next open finishes the swap, as long as the damage marker is there: the repair clears it
  only after the swap).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import sqlite3
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from btbuild.errors import CacheFileDamaged, StorageError

# primary result codes that mean the file's pages are damaged (extended codes keep them in
# their low byte: SQLITE_CORRUPT_INDEX, SQLITE_CORRUPT_SEQUENCE, SQLITE_CORRUPT_VTAB)
SQLITE_CORRUPT = 11
SQLITE_NOTADB = 26
_CORRUPTION = frozenset((SQLITE_CORRUPT, SQLITE_NOTADB))
_MAGIC = b"SQLite format 3\0"
_SUFFIXES = ("", "-wal", "-shm")

FileId = tuple[int, int]


def is_corruption(exc: sqlite3.Error) -> bool:
    """True when SQLite says the file's pages are damaged (not: busy, read-only, full...),
    or a text column holds bytes that are not UTF-8 (btbuild writes only valid text: garbage
    on a page SQLite does not see as damaged; Python refuses the whole query)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in _CORRUPTION
    text = str(exc).lower()
    return "malformed" in text or "not a database" in text or "decode to utf-8" in text


def looks_like_database(path: Path) -> bool:
    """A file SQLite calls "not a database" that was one: it has SQLite's magic, or whole
    pages. Anything else is a wrong ``[storage] path`` (a CSV, a text file), never moved."""
    try:
        with open(path, "rb") as file:
            head = file.read(len(_MAGIC))
        size = path.stat().st_size
    except OSError:
        return False
    return head == _MAGIC or (size > 0 and size % 512 == 0)


def file_id(path: Path) -> FileId | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_dev, stat.st_ino)


def describe(exc: sqlite3.Error) -> str:
    """SQLite's message on one printable line (a decode error quotes the garbage itself)."""
    text = str(exc)
    if "decode to UTF-8" in text:
        column = re.search(r"column '([^']*)'", text)
        text = f"column {column[1] if column else '?'} holds bytes that are not UTF-8 text"
    return "".join(char if char.isprintable() else "?" for char in text)


def damaged(path: Path, problem: str, found: FileId | None) -> CacheFileDamaged:
    return CacheFileDamaged(
        f"{path}: the cache file is damaged ({problem}); `btbuild fsck --repair`, or any "
        "`btbuild build`, moves it aside and salvages every result that still checks out",
        path=path,
        file_id=found,
        problem=problem,
    )


def sibling(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


# ---------------------------------------------------------------------- lock and marker


@contextlib.contextmanager
def repair_lock(path: Path, *, exclusive: bool) -> Iterator[None]:
    """``flock`` on ``<path>.repair-lock``. Shared (a connection opening) is skipped where
    the lock cannot be created (a read-only folder: nobody can repair there either)."""
    lock = sibling(path, ".repair-lock")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        if exclusive:
            raise StorageError(f"{lock}: cannot create the repair lock: {exc}") from None
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # releases the lock


def report_damage(path: Path, found: FileId | None) -> None:
    """Leave the marker for the next build (best effort: a read-only folder keeps none)."""
    if found is None:
        return
    with contextlib.suppress(OSError):
        sibling(path, ".damage-found").write_text(f"{found[0]}:{found[1]}\n")


def reported_damage(path: Path, found: FileId | None) -> bool:
    """Does the marker name the file ``found`` (this connection's file)? A marker naming
    neither it nor the file now at ``path`` is stale (a builder still on a replaced file met
    its damage): it is deleted, so a new file that reuses the old inode number is never taken
    for damaged."""
    if found is None:
        return False
    try:
        text = sibling(path, ".damage-found").read_text().strip()
    except OSError:
        return False
    if text == f"{found[0]}:{found[1]}":
        return True
    current = file_id(path)
    if current is not None and text != f"{current[0]}:{current[1]}":
        clear_damage_report(path)
    return False


def clear_damage_report(path: Path) -> None:
    with contextlib.suppress(OSError):
        sibling(path, ".damage-found").unlink()


# ---------------------------------------------------------------------- the swap


def fsync_path(path: Path, *, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def swap_in(path: Path, fresh: Path) -> Path:
    """Move the file at ``path`` and its ``-wal`` and ``-shm`` aside to
    ``<path>.damaged-<UTC time>``, then ``fresh`` (complete and fsynced) to ``path``. The
    database file moves first: a connection still open on it then sees it moved, and SQLite
    neither checkpoints nor deletes the ``-wal``/``-shm`` by name when it closes; its writes
    land in the moved-aside files (lost work, never stale). No new connection opens meanwhile
    (the caller holds the exclusive repair lock). Returns the moved-aside name."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    aside = sibling(path, f".damaged-{stamp}")
    for suffix in _SUFFIXES:
        with contextlib.suppress(FileNotFoundError):
            os.rename(f"{path}{suffix}", f"{aside}{suffix}")
    os.replace(fresh, path)
    fsync_path(path.parent, directory=True)
    return aside


def finish_interrupted_swap(path: Path) -> Path | None:
    """A repair killed between its renames left no file at ``path`` and a complete salvaged
    one beside it: finish the swap (exclusive lock held). The moved-aside name, or None."""
    ready = sibling(path, ".salvaged")
    if path.exists() or not ready.exists() or not sibling(path, ".damage-found").exists():
        return None
    return swap_in(path, ready)


def remove_leftovers(path: Path) -> None:
    """Delete what killed repairs left: partial salvages and source copies (exclusive lock
    held, so none of them is in use), and a salvaged file whose swap never started."""
    leftovers = list(path.parent.glob(f"{path.name}.salvage-*"))
    if path.exists():
        leftovers.append(sibling(path, ".salvaged"))
    for leftover in leftovers:
        with contextlib.suppress(OSError):
            leftover.unlink()


def remove(path: Path) -> None:
    for suffix in (*_SUFFIXES, "-journal"):
        with contextlib.suppress(OSError):
            os.unlink(f"{path}{suffix}")


# ---------------------------------------------------------------------- the backend's part


class FileHealth:
    """The SQLite backend's view of its file (a mixin: needs ``path``, ``file_id``,
    ``damage`` and ``_query``)."""

    path: Path
    file_id: FileId | None
    damage: CacheFileDamaged | None

    def _query(self, what: str, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        raise NotImplementedError

    def _error(self, what: str, exc: sqlite3.Error) -> StorageError:
        """The one-line error for a failed SQLite call: :class:`CacheFileDamaged` when the
        file's pages are damaged (remembered here and in the damage marker, so the build
        repairs it even where a cell's failure swallowed the error)."""
        if not is_corruption(exc):
            return StorageError(f"{self.path}: cannot {what}: {exc}")
        damage = damaged(self.path, f"{describe(exc)} while trying to {what}", self.file_id)
        if self.damage is None:  # the first time: remember it, and tell the other processes
            self.damage = damage
            report_damage(self.path, self.file_id)
        return damage

    def damage_found(self) -> CacheFileDamaged | None:
        """Damage this process met, damage another process reported for this file, or the
        file replaced under this connection (another process repaired it): in each case the
        results written through this connection may be lost, and the build runs again."""
        if self.damage is not None:
            return self.damage
        if reported_damage(self.path, self.file_id):
            return damaged(
                self.path,
                "a btbuild process found it damaged: a worker of this build or an earlier command",
                self.file_id,
            )
        if self.file_id is not None and file_id(self.path) != self.file_id:
            return CacheFileDamaged(
                f"{self.path}: the cache file was repaired by another process while this one "
                "wrote to it (what it wrote went to the moved-aside file): run again",
                path=self.path,
                file_id=self.file_id,
                problem="another process repaired it meanwhile",
            )
        return None

    def check_file(self) -> CacheFileDamaged | None:
        """SQLite's own check of every page (``PRAGMA quick_check``), for ``btbuild fsck``."""
        try:
            found = self._query("check the file", "PRAGMA quick_check")
        except CacheFileDamaged as exc:
            return exc
        problems = [str(row[0]) for row in found if row[0] != "ok"]
        if not problems:
            return None
        shown = problems[0] + (f" and {len(problems) - 1} more" if len(problems) > 1 else "")
        return damaged(self.path, shown, self.file_id)
