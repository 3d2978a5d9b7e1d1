"""Benchmark of issue 17: `btbuild report --html` for 50 targets x 365 dates.

Run: ``python bench/bench_report.py [--targets 50] [--dates 365]``. The workspace is the
no-op benchmark's (bench_build.py: per_date targets in a random DAG over one date source),
its cache filled as if every cell had run, plus one run-log record per cell; then one of
its 20 packages is edited so about a twentieth of the targets and their dependents would
re-run (those cells get the hash-by-hash explain rows, the expensive part of a report).

Printed: the whole `btbuild report` command (fresh process: imports, workspace, hashes, the
dry-run plan, the cache and run-log reads, the page) against its target of 5 s, the page
weight, and `btbuild status` over the same cells in the same run for scale.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_build import prepare_noop  # noqa: E402


def fill_run_log(root: Path, end_date: object) -> int:
    """One committed run-log record per cell, as a build that ran everything leaves."""
    from btbuild.session import Session
    from btbuild.storage.records import RunRecord

    session = Session(root)
    backend = session.backend
    names = [t.name for t in session.workspace.targets.values()]
    dates = sorted({r.date for r in backend.get_cells(names, _dates(end_date)).values()})
    count = 0
    started = time.time() - 3600
    for day_index, day in enumerate(dates):
        for name in names:
            backend.append_run(
                RunRecord(
                    run_id=f"bench{day_index % 4}/{name}-{day}",
                    target=name,
                    date=day,
                    status="committed",
                    build_pass=int(name[1:]) % 5 + 1,
                    worker_id="bench:1",
                    trigger="new",
                    started=started + count * 0.01,
                    duration=0.005,
                    phases={"compute": 0.004, "commit": 0.001},
                    items=1,
                    shards=1,
                )
            )
            count += 1
    session.close()
    return count


def _dates(end_date: object) -> list[str]:
    from datetime import date, timedelta

    assert isinstance(end_date, date)
    return [
        (date(2023, 1, 1) + timedelta(days=i)).isoformat()
        for i in range((end_date - date(2023, 1, 1)).days + 1)
    ]


def timed(argv: list[str], cwd: Path) -> tuple[float, float]:
    """Wall and CPU seconds of a command in a fresh process (CPU is what a loaded, shared
    machine does not inflate)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {proc.stderr.strip()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--targets", type=int, default=50)
    parser.add_argument("--dates", type=int, default=365)
    args = parser.parse_args()
    btbuild = str(Path(sys.executable).parent / "btbuild")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        end, prepare = prepare_noop(root, args.targets, args.dates)
        runs = fill_run_log(root, end)
        code = root / "calculations" / "p03" / "c.py"
        code.write_text("def run(ctx):\n    return 2\n")
        cells = args.targets * args.dates
        print(
            f"[report] {args.targets} targets x {args.dates} dates = {cells} cells, "
            f"{runs} run-log records (cache prepared in {prepare:.1f} s)"
        )
        out = Path(tmp) / "report"
        status_wall, status_cpu = timed(
            [btbuild, "status", "//...", "--date", end.isoformat()], root
        )
        wall, cpu = min(
            timed([btbuild, "report", "--html", str(out), "--date", end.isoformat()], root)
            for _ in range(2)
        )
        weight = (out / "index.html").stat().st_size
        print(
            f"  btbuild status           {status_wall:8.2f} s wall {status_cpu:8.2f} s CPU  "
            "(the same dry-run plan, for scale)"
        )
        print(
            f"  btbuild report --html    {wall:8.2f} s wall {cpu:8.2f} s CPU  "
            f"{cpu / status_cpu:.2f}x status (target < 5 s: wall {'MET' if wall < 5 else 'NOT MET'}, "
            f"CPU {'MET' if cpu < 5 else 'NOT MET'})"
        )
        print(
            f"  page weight              {weight / 1e6:8.2f} MB  ({weight / cells:.0f} bytes per cell)"
        )


if __name__ == "__main__":
    main()
