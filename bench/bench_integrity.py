"""What the damage check costs a no-op build (issue 12, self-repair).

    python bench/bench_integrity.py [--targets 1000] [--dates 365] [--users 1]

Fills a SQLite cache with committed per_date cells (one small checksummed shard each, like
bench_build's no-op workspace) and times, interleaved in the same process (best of 3):
``get_cell_summaries`` (what the planner read before the check existed),
``check_results`` (the check every build now runs: seal + every shard's digest) and
``get_cells`` (a full decode of every record, for scale). The no-op analysis target of
bench_build (< 2 s for 365k cells) applies to summaries + check together: printed MET / NOT MET.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path


def fill(path: Path, targets: int, dates: int, users: int) -> tuple[list[str], list[str]]:
    from datetime import date, timedelta

    from btbuild.storage import SqliteBackend, codec, integrity
    from btbuild.storage.records import CellRecord

    names = [f"t{index:04d}" for index in range(targets)]
    days = [(date(2023, 1, 1) + timedelta(days=offset)).isoformat() for offset in range(dates)]
    records, shards = [], []
    for name in names:
        for day in days:
            value = {f"u{user:05d}": [name, day, user] for user in range(users)}
            data = codec.canonical_bytes(value)
            shard = codec.encode_shards(data)[0]
            result_hash = codec.per_date_hash(data)
            records.append(
                CellRecord(
                    target=name,
                    date=day,
                    status="committed",
                    composite_hash="k" + name + day,
                    result_hash=result_hash,
                    kind="per_date",
                    generation="g",
                    shard_count=1,
                    item_count=1,
                    category="p",
                    checksums=integrity.make_checksums(
                        "g", result_hash, "per_date", 1, 1, [integrity.shard_digest(shard)]
                    ),
                )
            )
            shards.append((name, day, "g", 0, shard))
    with SqliteBackend(path) as backend:
        backend.put_cells(records)
        with backend._transaction("write shards") as conn:
            conn.executemany(
                "INSERT INTO shards (target, date, generation, idx, data) VALUES (?, ?, ?, ?, ?)",
                shards,
            )
    return names, days


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--targets", type=int, default=1000)
    parser.add_argument("--dates", type=int, default=365)
    parser.add_argument("--users", type=int, default=1)
    args = parser.parse_args()
    from btbuild.storage import SqliteBackend

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cache.db"
        start = time.perf_counter()
        names, days = fill(path, args.targets, args.dates, args.users)
        print(
            f"cache: {len(names) * len(days)} cells filled in {time.perf_counter() - start:.1f} s"
        )
        times: dict[str, list[float]] = {"summaries": [], "check": [], "records": []}
        with SqliteBackend(path) as backend:
            for _ in range(3):
                for name, call in (
                    ("summaries", backend.get_cell_summaries),
                    ("check", backend.check_results),
                    ("records", backend.get_cells),
                ):
                    start = time.perf_counter()
                    found = call(names, days)
                    times[name].append(time.perf_counter() - start)
                    if name == "check":
                        assert found == {}, found
    best = {name: min(values) for name, values in times.items()}
    print(f"  get_cell_summaries (planner read)        {best['summaries']:7.2f} s")
    print(f"  check_results (seal + shard digests)     {best['check']:7.2f} s")
    print(f"  get_cells (full decode, for scale)       {best['records']:7.2f} s")
    ratio = best["check"] / best["summaries"]
    total = best["check"] + best["summaries"]
    print(f"  check / summaries                        {ratio:7.2f}x  (no target)")
    print(
        f"  summaries + check                        {total:7.2f} s  "
        f"(no-op analysis budget < 2 s: {'MET' if total < 2 else 'NOT MET'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
