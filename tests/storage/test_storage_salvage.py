"""Damaged SQLite cache *files* (page-level damage): one-line errors, salvage, the swap.

A small cache with 512-byte pages (hundreds of pages, so damage lands in every table) is
damaged in place (garbage pages, a zeroed header, a cut, a silently flipped byte in a shard)
and repaired; every cell the repaired file holds must check out and read back equal to what
was committed. Repairs run in real processes where it matters: two at once, a live builder
on the old file, kill -9 during the salvage and in the middle of the swap.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from btbuild.errors import CacheFileDamaged, StorageError
from btbuild.storage import SqliteBackend
from btbuild.storage import sqlite_files as files
from btbuild.storage.outbox import PendingAlert
from btbuild.storage.records import RunRecord
from btbuild.storage.sqlite_salvage import Salvage, repair
from btbuild.storage.sqlite_scan import rows
from tests.storage.test_storage_contract import T0, commit_per_user

PAGE = 512
TARGETS = ["alpha", "beta", "gamma"]
DATES = [f"2024-01-{day:02d}" for day in range(1, 13)]


def _small_pages(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA page_size = {PAGE}")
    conn.execute("CREATE TABLE scratch (x)")
    conn.execute("DROP TABLE scratch")
    conn.close()


def make_cache(path: Path) -> dict[tuple[str, str], Any]:
    """36 committed per_user cells of a few shards each, runs and SimHashes; their values."""
    _small_pages(path)
    rng = random.Random(5)
    values = {}
    with SqliteBackend(path) as backend:
        backend.shard_limit = 4096
        for day in DATES:
            for target in TARGETS:
                value = {f"u{i:03d}": {"pad": rng.randbytes(20).hex()} for i in range(200)}
                commit_per_user(backend, target, day, value, composite_hash=f"k-{target}-{day}")
                values[(target, day)] = value
                backend.append_run(
                    RunRecord(
                        run_id=f"r-{target}-{day}",
                        target=target,
                        date=day,
                        status="committed",
                        started=T0,
                    )
                )
        for index in range(20):
            backend.put_sim_hash(f"code{index}", "f1", f"sim{index}")
        with backend._transaction("store pending alerts") as conn:
            for day in DATES:
                alert = PendingAlert("alpha", day, f"g{day}", "h", None, "per_user", 200, T0)
                conn.execute(
                    "INSERT INTO alert_outbox (id, data) VALUES (?, ?)",
                    [alert.key, alert.to_json()],
                )
    return values


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[Any, Any]]:
    path = tmp_path_factory.mktemp("pristine") / "cache.db"
    return path, make_cache(path)


@pytest.fixture
def cache(tmp_path: Path, pristine: tuple[Path, dict[Any, Any]]) -> Path:
    path = tmp_path / "cache.db"
    path.write_bytes(pristine[0].read_bytes())
    return path


def garble_pages(path: Path, pages: list[int], seed: int = 3) -> None:
    rng = random.Random(seed)
    with open(path, "r+b") as file:
        for page in pages:
            file.seek(page * PAGE)
            file.write(rng.randbytes(PAGE))


def page_count(path: Path) -> int:
    return path.stat().st_size // PAGE


def assert_clean_and_equal(path: Path, values: dict[Any, Any]) -> set[tuple[str, str]]:
    """Every cell of the repaired file checks out and reads back as committed."""
    with SqliteBackend(path) as backend:
        assert backend.check_file() is None
        assert backend.check_results(TARGETS, DATES, thorough=True) == {}
        kept = set(backend.get_cells(TARGETS, DATES))
        for key in kept:
            assert backend.read_result(*key) == values[key]
    return kept


# ---------------------------------------------------------------------- detection


def test_corruption_is_told_apart_from_other_errors(cache: Path) -> None:
    garble_pages(cache, [0])  # the header
    with pytest.raises(sqlite3.DatabaseError) as notadb:
        sqlite3.connect(cache).execute("SELECT * FROM sqlite_master").fetchall()
    assert files.is_corruption(notadb.value)
    assert not files.is_corruption(sqlite3.OperationalError("database is locked"))
    text = cache.with_name("notes.txt")
    text.write_text("not a cache at all\n")
    assert not files.looks_like_database(text) and files.looks_like_database(cache)
    with pytest.raises(StorageError, match="not a SQLite btbuild cache") as wrong:
        SqliteBackend(text)  # a wrong [storage] path is not "damage": never moved aside
    assert not isinstance(wrong.value, CacheFileDamaged)


def test_every_read_and_write_on_a_damaged_file_is_one_line(cache: Path) -> None:
    garble_pages(cache, range(page_count(cache) // 3, page_count(cache) // 3 + 40))
    backend = SqliteBackend(cache)

    def check_file() -> None:
        damage = backend.check_file()  # fsck's check of every page: returned, not raised
        if damage is not None:
            raise damage

    calls = [
        lambda: backend.check_results(TARGETS, DATES),
        lambda: backend.read_checked(TARGETS, DATES),
        lambda: [backend.read_result(t, d) for t in TARGETS for d in DATES],
        lambda: backend.collect_garbage(),
        check_file,
    ]
    for call in calls:
        with pytest.raises(CacheFileDamaged) as found:
            call()
        message = str(found.value)
        assert "\n" not in message and str(cache) in message and "fsck --repair" in message
        assert found.value.file_id == files.file_id(cache)
    assert backend.damage_found() is not None
    backend.close()
    with SqliteBackend(cache) as other:  # the marker tells the next process (the next build)
        assert other.damage_found() is not None
    marker = cache.with_name("cache.db.damage-found")
    marker.write_text("1:2\n")  # names a file long gone (a builder on a replaced file)
    with SqliteBackend(cache) as other:
        assert other.damage_found() is None and not marker.exists()  # stale: deleted


# ---------------------------------------------------------------------- the scan


def test_the_scan_steps_over_damaged_pages(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    _small_pages(path)
    with sqlite3.connect(path) as conn:  # one transaction
        conn.execute("CREATE TABLE t (v TEXT)")
        conn.executemany(
            "INSERT INTO t (v) VALUES (?)", [(f"row {i:05d} " + "x" * 90,) for i in range(3000)]
        )
    conn.close()
    total = page_count(path)
    bad = [total // 5, total // 2, total // 2 + 1, 4 * total // 5]
    garble_pages(path, bad)
    conn = sqlite3.connect(path)
    with pytest.raises(sqlite3.DatabaseError):
        conn.execute("SELECT count(*), max(length(v)) FROM t").fetchall()
    skipped: dict[str, int] = {}
    got = [v for (v,) in rows(conn, "t", "v", skipped)]
    assert skipped["t"] >= 1
    original = [f"row {i:05d} " + "x" * 90 for i in range(3000)]
    assert set(got) <= set(original) and got == sorted(got)  # no garbage, in order
    assert len(got) >= 3000 - 60 * len(bad)  # ~4 rows a page; a bad interior page costs more
    assert got[-1] == original[-1] and got[0] == original[0]  # read on past every bad page


def test_a_cells_row_garbage_gave_other_types_is_dropped(cache: Path) -> None:
    """The salvage reads rows without the read query's filter: it checks what the filter and
    STRICT would (a wrong type would also make the insert into the new file fail)."""
    from btbuild.storage.sqlite_salvage import _cell_row_ok
    from btbuild.storage.sqlite_schema import _COLUMN_FIELDS

    columns = ", ".join((*_COLUMN_FIELDS, "data"))
    row = sqlite3.connect(cache).execute(f"SELECT {columns} FROM cells LIMIT 1").fetchone()
    assert _cell_row_ok(row)
    at = {name: index for index, name in enumerate(_COLUMN_FIELDS)}
    for name, value in [
        ("attempts", "1"),
        ("status", "bogus"),
        ("shard_count", -1),
        ("updated_at", float("nan")),
        ("generation", b"g"),
        ("target", None),
    ]:
        bad = list(row)
        bad[at[name]] = value
        assert not _cell_row_ok(tuple(bad)), name


# ---------------------------------------------------------------------- salvage


def test_salvage_keeps_every_cell_that_checks_out(
    cache: Path, pristine: tuple[Path, dict[Any, Any]]
) -> None:
    values = pristine[1]
    with SqliteBackend(cache) as backend:  # a flipped byte in a shard: SQLite cannot see it
        record = backend.get_cell("beta", DATES[4])
        assert record is not None and record.generation is not None
        shard = backend._read_shards("beta", DATES[4], record.generation, range(1))[0]
    assert shard is not None
    data = bytearray(cache.read_bytes())
    at = data.index(shard[40:80]) + 10
    data[at] ^= 0x01
    cache.write_bytes(bytes(data))
    total = page_count(cache)
    garble_pages(cache, [total // 3, total // 2, 2 * total // 3])
    damaged_bytes = cache.read_bytes()

    salvage = repair(cache, files.file_id(cache))

    kept = assert_clean_and_equal(cache, values)
    assert ("beta", DATES[4]) not in kept  # tampered: dropped, it rebuilds
    assert salvage.cells_kept == len(kept) and salvage.cells_kept + salvage.cells_dropped == 36
    assert 20 <= salvage.cells_kept < 36
    assert salvage.rows["runs"] > 0 and salvage.moved_to is not None
    with SqliteBackend(cache) as backend:  # pending alerts are still to publish
        pending = backend.pending_alerts()
        assert len(pending) == salvage.rows["alert_outbox"] > 0 and None not in pending.values()
    assert salvage.moved_to.read_bytes() == damaged_bytes  # kept for forensics, untouched
    assert salvage.moved_to.name.startswith("cache.db.damaged-")
    assert str(salvage.moved_to) in salvage.describe()
    assert not list(cache.parent.glob("cache.db.salvage*")) and not files.reported_damage(
        cache, files.file_id(cache)
    )


@pytest.mark.parametrize("damage", ["zeroed header", "cut in half"])
def test_salvage_of_a_file_without_header_or_cut_short(
    cache: Path, pristine: tuple[Path, dict[Any, Any]], damage: str
) -> None:
    if damage == "zeroed header":
        with open(cache, "r+b") as file:
            file.write(bytes(100))
    else:
        with open(cache, "r+b") as file:
            file.truncate(cache.stat().st_size // 2)
    with pytest.raises(CacheFileDamaged) as found:
        SqliteBackend(cache)
    salvage = repair(found.value.path, found.value.file_id)
    kept = assert_clean_and_equal(cache, pristine[1])
    if damage == "zeroed header":
        assert salvage.nothing_readable is not None and not kept
        assert "nothing could be salvaged" in salvage.describe()
    else:  # the pages before the cut are read (the file is padded to its claimed size)
        assert salvage.nothing_readable is None and len(kept) >= 5


def test_a_healthy_file_is_left_alone_when_another_process_repaired_it(cache: Path) -> None:
    before = files.file_id(cache)
    assert before is not None
    salvage = repair(cache, (before[0], before[1] + 1))  # found damaged as another file
    assert salvage.already_replaced and files.file_id(cache) == before


# ---------------------------------------------------------------------- processes


def _spawn(script: str, path: Path, mode: str) -> subprocess.Popen[str]:
    found = files.file_id(path)
    assert found is not None
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), str(path), mode, f"{found[0]}:{found[1]}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


REPAIR = """
import sys, time
from pathlib import Path
from btbuild.storage import sqlite_salvage
path, mode = Path(sys.argv[1]), sys.argv[2]
found = tuple(map(int, sys.argv[3].split(":")))  # as the process that met the damage saw it
if mode == "slow":  # stop inside the salvage until killed
    checked = sqlite_salvage._check
    def slow(partial, result):
        checked(partial, result)
        Path(f"{path}.ready").write_text("x")
        time.sleep(60)
    sqlite_salvage._check = slow
if mode == "die-in-swap":  # killed after the damaged file went aside, before the new one came in
    import os, signal
    from btbuild.storage import sqlite_files
    def die(target, fresh):
        os.rename(target, f"{target}.damaged-test")
        os.kill(os.getpid(), signal.SIGKILL)
    sqlite_files.swap_in = die
print("already" if sqlite_salvage.repair(path, found).already_replaced else "repaired")
"""


def test_two_repairs_at_once_repair_once(cache: Path, pristine: tuple[Path, Any]) -> None:
    total = page_count(cache)
    garble_pages(cache, [total // 2])
    both = [_spawn(REPAIR, cache, "plain") for _ in range(2)]
    outputs = sorted(process.communicate(timeout=60)[0].strip() for process in both)
    assert all(process.returncode == 0 for process in both)
    assert outputs == ["already", "repaired"]  # the second waited, then found a new file
    assert len(list(cache.parent.glob("cache.db.damaged-*"))) == 1
    assert_clean_and_equal(cache, pristine[1])


def test_kill_9_during_the_salvage_leaves_the_damaged_file(cache: Path, pristine: Any) -> None:
    total = page_count(cache)
    garble_pages(cache, [total // 2])
    damaged_bytes, before = cache.read_bytes(), files.file_id(cache)
    process = _spawn(REPAIR, cache, "slow")
    deadline = time.monotonic() + 30
    while not Path(f"{cache}.ready").exists():
        assert process.poll() is None and time.monotonic() < deadline, process.stderr
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    assert files.file_id(cache) == before and cache.read_bytes() == damaged_bytes
    assert not list(cache.parent.glob("cache.db.damaged-*"))
    salvage = repair(cache, before)  # the next repair cleans up and succeeds
    assert not salvage.already_replaced
    assert not list(cache.parent.glob("cache.db.salvage-*"))
    assert_clean_and_equal(cache, pristine[1])


def test_kill_9_in_the_middle_of_the_swap_is_finished_by_the_next_open(
    cache: Path, pristine: Any
) -> None:
    total = page_count(cache)
    garble_pages(cache, [total // 2])
    process = _spawn(REPAIR, cache, "die-in-swap")
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert not cache.exists() and Path(f"{cache}.salvaged").exists()
    with SqliteBackend(cache) as backend:  # the next open finishes the swap, no empty cache
        assert len(backend.get_cells(TARGETS, DATES)) >= 30
    assert not Path(f"{cache}.salvaged").exists()
    assert_clean_and_equal(cache, pristine[1])


LIVE = """
import sys
from pathlib import Path
from btbuild.storage import SqliteBackend
from btbuild.storage.outbox import PendingAlert
from btbuild.storage.records import RunRecord
backend = SqliteBackend(Path(sys.argv[1]))
backend.get_cell("alpha", "2024-01-01")  # WAL and shared memory open
print("open", flush=True)
sys.stdin.readline()  # the repair runs now
for index in range(50):
    backend.append_run(RunRecord(run_id=f"late{index}", target="alpha", date="2024-01-01", status="committed", started=1.0))
found = backend.damage_found()
print("replaced" if found is not None and "another process" in str(found) else "not told", flush=True)
backend.close()
"""


def test_a_builder_still_on_the_old_file_writes_into_the_moved_aside_one(
    cache: Path, pristine: Any
) -> None:
    garble_pages(cache, [page_count(cache) - 2])  # damage far from what the builder reads
    live = subprocess.Popen(
        [sys.executable, "-c", LIVE, str(cache)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert live.stdout is not None and live.stdin is not None
    assert live.stdout.readline().strip() == "open"
    salvage: Salvage = repair(cache, files.file_id(cache))
    with SqliteBackend(cache) as fresh:  # a builder on the new file, in WAL mode
        fresh.append_run(
            RunRecord(
                run_id="new", target="beta", date="2024-01-02", status="committed", started=2.0
            )
        )
        live.stdin.write("go\n")
        live.stdin.flush()
        assert live.stdout.readline().strip() == "replaced"
        assert live.wait(timeout=30) == 0
        assert Path(f"{cache}-wal").exists()  # the old builder's close deleted nothing here
        assert [run.run_id for run in fresh.find_runs(run_id="new")] == ["new"]
        assert not fresh.find_runs(run_id="late0")  # its work is lost, never mixed in
    assert salvage.moved_to is not None
    old = sqlite3.connect(salvage.moved_to)
    assert old.execute("SELECT count(*) FROM runs WHERE run_id LIKE 'late%'").fetchone() == (50,)
    old.close()
    assert_clean_and_equal(cache, pristine[1])
    with sqlite3.connect(cache) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
