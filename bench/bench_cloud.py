"""Benchmarks of the cloud path on the emulators (issues 7 and 15).

1. **No-op analysis, Firestore vs SQLite** (issue 15, target: Firestore within 1.5x): the
   demo workspace built once over ``--noop-days`` days into SQLite and into Firestore, then a
   no-op ``build //...`` (every cell up to date) timed in this process for each, the two
   alternated, best of ``--repeat`` after a warm-up round (imports and the hash cache are
   shared, so the figure is the analysis: reading the cache and deciding every cell). Prints
   the ratio, MET / NOT MET.
2. **Workers** (issue 7): the demo build through Pub/Sub workers, 1 worker vs 2.

Run: ``python bench/bench_cloud.py [--users 200] [--days 5] [--noop-days 34] [--skip-workers]``. Starts the Firestore and Pub/Sub
emulators (needs gcloud and Java), copies the demo workspace (the repository root) with
``[storage] backend = "firestore"`` and a fresh prefix per run, starts N ``btbuild worker``
processes, waits until they pull, then times ``btbuild build //... --executor pubsub`` on an
empty cache. Prints cells per second for 1 and 2 workers and the speed-up (measured in this
run: the emulators, the dispatcher and the workers share this machine's cores, so the
speed-up is bounded by what is left for the workers).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.cloud import emulators  # noqa: E402 - after the path is set


def demo_copy(root: Path, users: int, prefix: str | None) -> None:
    """The demo workspace; its cache in Firestore under ``prefix`` (SQLite when None)."""
    shutil.copytree(REPO / "calculations", root / "calculations")
    shutil.copytree(REPO / "layers", root / "layers")
    if (REPO / "schemas").is_dir():
        shutil.copytree(REPO / "schemas", root / "schemas")
    shutil.copytree(
        REPO / "plugins", root / "plugins", ignore=shutil.ignore_patterns("__pycache__")
    )
    text = (REPO / "BUILD.toml").read_text()
    if prefix is not None:
        text = re.sub(
            r"\[storage\][^\[]*", f'[storage]\nbackend = "firestore"\nprefix = "{prefix}"\n\n', text
        )
    text = re.sub(r"users = \d+", f"users = {users}", text)
    (root / "BUILD.toml").write_text(text)


def timed_build(
    root: Path, workers: int, end: date, env: dict[str, str]
) -> tuple[float, int, dict[str, int]]:
    procs = []
    logs = []
    for index in range(workers):
        log = root / f"worker{index}.log"
        logs.append(log)
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "btbuild",
                    "--workspace",
                    str(root),
                    "worker",
                    "--idle-exit",
                    "120",
                    "--ack-deadline",
                    "30",
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log.open("wb"),
                start_new_session=True,
            )
        )
    try:
        deadline = time.monotonic() + 120
        while not all("pulling" in log.read_text() for log in logs):
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise SystemExit(
                    "workers did not start:\n" + "\n".join(log.read_text() for log in logs)
                )
            time.sleep(0.2)
        start = time.perf_counter()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "btbuild",
                "--workspace",
                str(root),
                "build",
                "//...",
                "--date",
                end.isoformat(),
                "--executor",
                "pubsub",
                "--format",
                "json",
            ],
            env=env,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - start
    finally:
        for process in procs:
            process.kill()
            process.wait()
    if not done.stdout.strip():
        raise SystemExit(f"build failed: {done.stderr}")
    summary = json.loads(done.stdout)["summary"]
    return seconds, summary["ran"], summary


NOOP_TARGET = 1.5
WARM_UP = 4  # rounds of each backend before the measured ones


def _cli(root: Path, env: dict[str, str], *argv: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "btbuild", "--workspace", str(root), *argv, "--format", "json"],
        env=env,
        capture_output=True,
        text=True,
    )
    if not done.stdout.strip():
        raise SystemExit(f"btbuild {' '.join(argv)} failed: {done.stderr}")
    return dict(json.loads(done.stdout))


def noop_seconds(root: Path, end: date) -> tuple[float, float, int]:
    """In-process wall time and CPU time (every thread of this process: the client's side;
    the emulator's JVM is another process) of one no-op ``build //...``, and its cell count."""
    from btbuild.execution.build import BuildRequest, Scheduler
    from btbuild.session import Session

    session = Session(root)
    started, cpu = time.perf_counter(), time.process_time()
    report = Scheduler(session, BuildRequest(("//...",), end)).run()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    session.close()
    summary = report.summary()
    if summary["ran"] or summary["failed"] or summary["dead_letter"]:
        raise SystemExit(f"not a no-op build in {root}: {summary}")
    return seconds, cpu, len(report.cells)


def bench_noop(tmp: Path, env: dict[str, str], users: int, days: int, repeat: int) -> None:
    end = date(2024, 1, 1) + timedelta(days=days - 1)
    sqlite_root, firestore_root = tmp / "noop-sqlite", tmp / "noop-firestore"
    demo_copy(sqlite_root, users, None)
    demo_copy(firestore_root, users, f"bench/{uuid.uuid4().hex[:12]}")
    for root in (sqlite_root, firestore_root):
        started = time.perf_counter()
        summary = _cli(root, env, "build", "//...", "--date", end.isoformat())["summary"]
        print(f"filled {root.name}: {summary} in {time.perf_counter() - started:.1f} s")
    os.environ.update(env)
    # alternated, so a burst of load from elsewhere on the machine hits both; the first
    # rounds warm imports, the hash cache and the emulator's JIT (a production Firestore is
    # warm); then the best and the median of the rest
    times: dict[Path, list[float]] = {sqlite_root: [], firestore_root: []}
    cpus: dict[Path, list[float]] = {sqlite_root: [], firestore_root: []}
    for _ in range(WARM_UP + repeat):
        for root in (sqlite_root, firestore_root):
            seconds, cpu, cells = noop_seconds(root, end)
            times[root].append(seconds)
            cpus[root].append(cpu)
    for name, pick in (("best", min), ("median", statistics.median)):
        sqlite_s = pick(times[sqlite_root][WARM_UP:])
        firestore_s = pick(times[firestore_root][WARM_UP:])
        ratio = firestore_s / sqlite_s
        print(
            f"no-op analysis of {cells} cells, {name} of {repeat}: SQLite {sqlite_s:.3f} s, "
            f"Firestore {firestore_s:.3f} s, ratio {ratio:.2f}x (target <= {NOOP_TARGET}x): "
            f"{'MET' if ratio <= NOOP_TARGET else 'NOT MET'}"
        )
    # the client's own CPU, which the machine's load and the emulator's share of the cores
    # do not move (a production Firestore does not run on the builder's cores)
    sqlite_cpu = statistics.median(cpus[sqlite_root][WARM_UP:])
    firestore_cpu = statistics.median(cpus[firestore_root][WARM_UP:])
    print(
        f"client CPU of the no-op, median of {repeat}: SQLite {sqlite_cpu:.3f} s, Firestore "
        f"{firestore_cpu:.3f} s, ratio {firestore_cpu / sqlite_cpu:.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--days", type=int, default=5)
    parser.add_argument("--noop-days", type=int, default=34)
    parser.add_argument("--noop-users", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--skip-workers", action="store_true")
    parser.add_argument("--skip-noop", action="store_true")
    args = parser.parse_args()
    fs, ps = emulators.start("firestore"), emulators.start("pubsub")
    env = dict(
        os.environ,
        FIRESTORE_EMULATOR_HOST=fs.host,
        PUBSUB_EMULATOR_HOST=ps.host,
        PYTHONPATH=str(REPO),
    )
    end = date(2024, 1, 1) + timedelta(days=args.days - 1)
    figures = {}
    try:
        with tempfile.TemporaryDirectory(prefix="btbuild-bench-cloud-") as tmp:
            if not args.skip_noop:
                bench_noop(Path(tmp), env, args.noop_users, args.noop_days, args.repeat)
            for workers in () if args.skip_workers else (1, 2):
                root = Path(tmp) / f"w{workers}"
                demo_copy(root, args.users, f"bench/{uuid.uuid4().hex[:12]}")
                seconds, ran, summary = timed_build(root, workers, end, env)
                figures[workers] = (seconds, ran)
                print(
                    f"{workers} worker{'s' if workers > 1 else ''}: {ran} cells ran in {seconds:.1f} s = "
                    f"{ran / seconds:.2f} cells/s  (summary {summary})"
                )
    finally:
        emulators.stop_all()
    if args.skip_workers:
        return
    speedup = (figures[2][1] / figures[2][0]) / (figures[1][1] / figures[1][0])
    # the issue asks for the figure, not a target: on a machine this small the two emulator
    # JVMs, the dispatcher and the workers all share the same cores
    print(
        f"speed-up 2 vs 1 workers: {speedup:.2f}x ({os.cpu_count()} cores shared by the workers, "
        "both emulators and the dispatcher)"
    )


if __name__ == "__main__":
    main()
