"""What repairing a damaged cache *file* costs (docs/storage.md, "Damaged cache files").

    python bench/bench_salvage.py [--targets 1000] [--dates 60] [--users 20]

Fills a SQLite cache like bench_integrity.py (committed per_date cells, one checksummed shard
each), then, interleaved in the same process (best of 3): the check a no-op build runs over
every cell (``read_checked``) on the intact file, and ``sqlite_salvage.repair`` of a copy with
512 random bytes written at 1/3, 1/2 and 2/3 of the file (snapshot, scan stepping over the
damaged pages, the thorough check of every salvaged cell, the swap). Prints both times, the
ratio and what was salvaged. No target: the repair runs once, on the rare damaged file.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_integrity import fill  # noqa: E402


def damage(path: Path, seed: int) -> None:
    size = path.stat().st_size
    rng = random.Random(seed)
    with open(path, "r+b") as file:
        for at in (size // 3, size // 2, 2 * size // 3):
            file.seek(at)
            file.write(rng.randbytes(512))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--targets", type=int, default=1000)
    parser.add_argument("--dates", type=int, default=60)
    parser.add_argument("--users", type=int, default=20)
    args = parser.parse_args()
    from btbuild.storage import SqliteBackend, sqlite_files, sqlite_salvage

    with tempfile.TemporaryDirectory() as tmp:
        pristine = Path(tmp) / "pristine.db"
        names, days = fill(pristine, args.targets, args.dates, args.users)
        size = pristine.stat().st_size
        print(f"cache: {len(names) * len(days)} cells, {size / 1e6:.1f} MB")
        times: dict[str, list[float]] = {"check": [], "repair": []}
        salvage = None
        for trial in range(3):
            with SqliteBackend(pristine) as backend:
                start = time.perf_counter()
                backend.read_checked(names, days)
                times["check"].append(time.perf_counter() - start)
            work = Path(tmp) / f"trial{trial}"
            work.mkdir()
            damaged = work / "cache.db"
            shutil.copyfile(pristine, damaged)
            damage(damaged, trial)
            start = time.perf_counter()
            salvage = sqlite_salvage.repair(damaged, sqlite_files.file_id(damaged))
            times["repair"].append(time.perf_counter() - start)
    best = {name: min(values) for name, values in times.items()}
    assert salvage is not None
    print(f"  no-op build check (read_checked)         {best['check']:7.2f} s")
    print(f"  repair of the damaged file               {best['repair']:7.2f} s")
    print(f"  repair / check                           {best['repair'] / best['check']:7.2f}x")
    print(f"  last trial: {salvage.describe().split('; ', 1)[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
