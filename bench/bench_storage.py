"""Storage benchmark: batched cell-record reads and per_user result throughput on SQLite.

    python bench/bench_storage.py [--targets 1000] [--dates 365] [--megabytes 50]

Prints each figure and whether its target is met (365k cell records read in under 1 s: the
planner's read, see docs/storage.md "Reading for the planner").
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from btbuild.storage import CellRecord, SqliteBackend


def _record(target: str, day: str, index: int) -> CellRecord:
    return CellRecord(
        target=target,
        date=day,
        status="committed",
        composite_hash=f"{index:032x}",
        components={"code": f"{index:032x}", "deps": f"{index + 1:032x}", "epoch": "1"},
        code_hash=f"{index:032x}",
        result_hash=f"{index * 7:032x}",
        dep_results={"//pricing:daily_returns": f"{index * 3:032x}"},
        root_fingerprints={"prices": f"p{index}", "portfolio": f"f{index}"},
        category="risk",
        kind="per_user",
        attempts=1,
        generation=f"{index:032x}",
        shard_count=1,
        item_count=100_000,
        updated_at=1.7e9,
    )


def bench_cells(
    backend: SqliteBackend, targets: int, dates: int
) -> tuple[float, float, float, float, int]:
    names = [f"target_{i:04d}" for i in range(targets)]
    start = date(2024, 1, 1)
    days = [(start + timedelta(days=i)).isoformat() for i in range(dates)]
    began = time.perf_counter()
    backend.put_cells(
        _record(name, day, i * dates + j)
        for i, name in enumerate(names)
        for j, day in enumerate(days)
    )
    write = time.perf_counter() - began
    began = time.perf_counter()
    backend._conn.execute("SELECT * FROM cells").fetchall()
    floor = time.perf_counter() - began
    began = time.perf_counter()
    summaries = backend.get_cell_summaries(names, days)
    summary_read = time.perf_counter() - began
    began = time.perf_counter()
    cells = backend.get_cells(names, days)
    read = time.perf_counter() - began
    assert len(summaries) == len(cells)
    return write, summary_read, read, floor, len(cells)


def bench_result(backend: SqliteBackend, megabytes: int) -> tuple[float, float, float, int]:
    rng = random.Random(7)
    users = []
    size = 0
    while size < megabytes * 1_000_000:
        value = {
            "risk": rng.random(),
            "positions": [
                {
                    "symbol": f"S{rng.randrange(5000)}",
                    "qty": rng.randrange(1, 1000),
                    "px": round(rng.uniform(1, 500), 2),
                }
                for _ in range(8)
            ],
            "tag": rng.choice(["a", "b", "c"]),
        }
        users.append((f"u{len(users):07d}", value))
        size += 330  # approximate canonical size; measured exactly below
    lease = backend.acquire("big_result", "2024-01-01", "bench", 900)
    assert lease is not None
    began = time.perf_counter()
    writer = backend.open_writer(lease, "per_user")
    for start in range(0, len(users), 5000):  # the executor's flush_every
        writer.add(users[start : start + 5000])
        writer.flush()
    record = writer.commit(composite_hash="bench")
    write = time.perf_counter() - began
    began = time.perf_counter()
    count = sum(1 for _ in backend.iter_result("big_result", "2024-01-01"))
    read = time.perf_counter() - began
    assert count == len(users) == record.item_count
    raw = sum(len(line) + 1 for line in _lines(users))
    return raw / 1e6, write, read, record.shard_count


def _lines(users: list[tuple[str, object]]) -> list[bytes]:
    from btbuild.storage.codec import user_line

    return [user_line(user_id, value) for user_id, value in users]


def bench_add(users: int = 100_000) -> tuple[float, float, float]:
    """Microseconds per user of ResultWriter.add_user, of add(((id, value),)) as the executor
    calls it, and of the careful (pre-fast-path) encoding alone, for a typical small value."""
    from btbuild.storage import MemoryBackend
    from btbuild.storage.codec import careful_user_line

    rng = random.Random(3)
    values = [
        {
            "risk": rng.random(),
            "pnl": rng.uniform(-1, 1),
            "beta": rng.random(),
            "vol": rng.random(),
            "n": i,
        }
        for i in range(users)
    ]
    ids = [f"u{i:07d}" for i in range(users)]
    figures = []
    for style in ("add_user", "add"):
        backend = MemoryBackend()
        lease = backend.acquire(f"t_{style}", "2024-01-01", "bench", 900)
        assert lease is not None
        writer = backend.open_writer(lease, "per_user")
        began = time.perf_counter()
        if style == "add_user":
            for user_id, value in zip(ids, values, strict=True):
                writer.add_user(user_id, value)
        else:
            for user_id, value in zip(ids, values, strict=True):
                writer.add(((user_id, value),))
        writer.flush()
        figures.append((time.perf_counter() - began) / users * 1e6)
        writer.commit()
    began = time.perf_counter()
    for user_id, value in zip(ids, values, strict=True):
        careful_user_line(user_id, value)
    figures.append((time.perf_counter() - began) / users * 1e6)
    return figures[0], figures[1], figures[2]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=1000)
    parser.add_argument("--dates", type=int, default=365)
    parser.add_argument("--megabytes", type=int, default=50)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as folder,
        SqliteBackend(Path(folder) / "cache.db") as backend,
    ):
        write, summary_read, read, floor, count = bench_cells(backend, args.targets, args.dates)
        verdict = "met" if summary_read < 1.0 else "NOT met"
        print(f"cell records: wrote {count:,} in {write:.2f} s")
        print(
            f"  planner read of all {count:,} (status, input and result hashes: what a build reads for every cell): "
            f"{summary_read:.3f} s (target < 1 s: {verdict})"
        )
        print(
            f"  full records of all {count:,} (every field decoded; read only for changed cells and explain): {read:.3f} s"
        )
        print(
            f"  for scale: fetching the raw rows alone (no decoding) takes {floor:.3f} s on this machine"
        )
        megabytes, write, read, shards = bench_result(backend, args.megabytes)
        print(
            f"per_user result: {megabytes:.1f} MB canonical JSON in {shards} shards; "
            f"write {megabytes / write:.1f} MB/s ({write:.2f} s), read back {megabytes / read:.1f} MB/s ({read:.2f} s)"
        )
    add_user, add, careful = bench_add()
    print(
        f"per_user add (5-key dict of floats, incl. hashing and compression): add_user {add_user:.2f} us/user, "
        f"add(((id, value),)) {add:.2f} us/user; the careful encoding alone costs {careful:.2f} us/user"
    )
    return 0 if verdict == "met" else 1


if __name__ == "__main__":
    sys.exit(main())
