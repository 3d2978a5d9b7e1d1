"""Benchmark of issue 8: the whole demo workspace (all calculations) cold and no-op.

Run: ``python bench/bench_demo.py [--users 20000] [--days 30] [--jobs 1]``. The demo workspace
(BUILD.toml, calculations/, layers/, plugins/) is copied to a temporary folder with
``[plugin.market] users`` set, then built cold in a fresh process (its peak RSS measured by the
process itself), then built again (the no-op build: nothing may run).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

CHILD = """
import json, resource, sys, time
from datetime import date
from pathlib import Path
from btbuild.execution.build import BuildRequest, Scheduler
from btbuild.session import Session
root, end, jobs = Path(sys.argv[1]), date.fromisoformat(sys.argv[2]), int(sys.argv[3])
session = Session(root)
start = time.perf_counter()
report = Scheduler(session, BuildRequest(patterns=("//...",), end=end, jobs=jobs)).run()
elapsed = time.perf_counter() - start
session.close()
print(json.dumps({"seconds": elapsed, "summary": report.summary(),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "users": sum(c.items for c in report.cells)}))
"""


def copy_demo(target: Path, users: int) -> Path:
    for name in ("calculations", "layers", "plugins"):
        shutil.copytree(REPO / name, target / name, ignore=shutil.ignore_patterns("__pycache__"))
    build = (REPO / "BUILD.toml").read_text()
    build = re.sub(r"(?m)^users = \d+", f"users = {users}", build)
    (target / "BUILD.toml").write_text(build)
    return target


def run(root: Path, end: date, jobs: int) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(root), end.isoformat(), str(jobs)],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    if proc.returncode != 0:
        raise SystemExit(f"build failed: {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=30, help="calendar days from 2024-01-01")
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args()
    end = date(2024, 1, 1) + timedelta(days=args.days - 1)
    with tempfile.TemporaryDirectory() as tmp:
        root = copy_demo(Path(tmp), args.users)
        start = time.perf_counter()
        cold = run(root, end, args.jobs)
        cold_wall = time.perf_counter() - start
        start = time.perf_counter()
        noop = run(root, end, args.jobs)
        noop_wall = time.perf_counter() - start
    print(
        f"demo workspace: {args.users} users, {args.days} days (2024-01-01 .. {end}), --jobs {args.jobs}"
    )
    print(
        f"  cold build   {cold['seconds']:8.1f} s  (process {cold_wall:.1f} s)  {cold['summary']}"
    )
    print(
        f"               {cold['users'] / cold['seconds']:8.0f} user-results/s, peak RSS {cold['peak_rss_mb']:.0f} MB"
    )
    print(
        f"  no-op build  {noop['seconds']:8.2f} s  (process {noop_wall:.1f} s)  {noop['summary']}"
    )
    print(
        f"               peak RSS {noop['peak_rss_mb']:.0f} MB; nothing ran: {'yes' if noop['summary']['ran'] == 0 else 'NO'}"
    )
    return 0 if noop["summary"]["ran"] == 0 and cold["summary"]["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
