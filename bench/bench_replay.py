"""Benchmark: proving one cosmetic change of a per_user target vs re-running its cells.

    python bench/bench_replay.py [--users 20000] [--dates 30]

A workspace over the synthetic market (``--users`` users) with one per_user target (the
portfolio value: roots ``portfolio`` and ``prices``) is built over ``--dates`` dates. Then, in
the same run:

* re-run: ``build --force`` of the target over every date (what a change that cannot be
  proven costs);
* prove: a behaviour-preserving edit of the target, then a plain ``build`` - every cell must
  be skipped as ``cosmetic``. Its time covers everything the proof needs: the fabricated
  simulation, the replay of the ``[sim]`` sample of stored cells on their real inputs (6
  dates x 200 users by default) and the adoption of the new code hash by every cell.

Target (issue 11): prove <= 10% of re-run. Prints both times, the ratio and MET / NOT MET.
Both builds run in this process through the same code as ``btbuild build``.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

TARGET_RATIO = 0.10
FIRST = date(2024, 1, 2)

ROOT_BUILD = """\
[workspace]
name = "benchreplay"
plugins = ["btbuild.plugins.market"]
start_date = "{first}"

[execution]
min_items = 1000

[plugin.market]
users = {users}
instruments = 40
seed = 11
start = "2023-12-01"
"""

BOOK_BUILD = """\
[calculation.value]
entry = "value:value"
roots = ["portfolio", "prices"]
checks = {{ null_density = false, flatline = false }}
"""

VALUE = """\
def position_value(position, prices):
    bar = prices.get(position["symbol"])
    return 0.0 if bar is None else position["quantity"] * bar["close"]


def value(ctx):
    prices = ctx.root("prices")
    book = ctx.user["portfolio"]
    invested = sum(position_value(p, prices) for p in book["positions"])
    return {"invested": invested, "worth": invested + book["cash"]}
"""

COSMETIC = VALUE.replace("position_value", "line_value").replace(
    'invested + book["cash"]', 'book["cash"] + invested'
)


def write_workspace(root: Path, users: int) -> Path:
    (root / "calculations" / "book").mkdir(parents=True)
    (root / "BUILD.toml").write_text(ROOT_BUILD.format(first=FIRST.isoformat(), users=users))
    (root / "calculations" / "book" / "BUILD.toml").write_text(BOOK_BUILD.format())
    (root / "calculations" / "book" / "value.py").write_text(VALUE)
    return root


def cpu_seconds() -> float:
    """CPU time of this process and its reaped children (the judge's child process)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def build(root: Path, last: date, *, force: bool = False) -> tuple[float, dict[str, int], float]:
    from btbuild.cli.commands.build import run_build
    from btbuild.execution.build import BuildRequest
    from btbuild.session import Session

    session = Session(root)
    try:
        request = BuildRequest(patterns=("//book:value",), end=last, force=force)
        started, cpu = time.perf_counter(), cpu_seconds()
        report = run_build(session, request, "json")
        seconds = time.perf_counter() - started
    finally:
        session.close()
    cpu = cpu_seconds() - cpu
    reasons: dict[str, int] = {}
    for cell in report.cells:
        reasons[str(cell.reason)] = reasons.get(str(cell.reason), 0) + 1
    return seconds, reasons, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--dates", type=int, default=30)
    args = parser.parse_args()
    last = FIRST + timedelta(days=args.dates - 1)
    temp = Path(tempfile.mkdtemp(prefix="bench-replay-"))
    try:
        root = write_workspace(temp / "ws", args.users)
        print(f"load average {os.getloadavg()[0]:.1f}")
        first_build, reasons, cpu = build(root, last)
        print(f"first build: {first_build:.1f} s (cpu {cpu:.1f} s) {reasons}")
        rerun, reasons, rerun_cpu = build(root, last, force=True)
        cells = reasons.get("forced", 0)
        print(
            f"re-run ({cells} cells with data of {args.dates} dates x {args.users} users, --force): "
            f"{rerun:.2f} s (cpu {rerun_cpu:.2f} s) {reasons}"
        )
        (root / "calculations" / "book" / "value.py").write_text(COSMETIC)
        prove, reasons, prove_cpu = build(root, last)
        print(
            "prove the cosmetic change (simulation + replay + adoption, the judge's child "
            f"process included): {prove:.2f} s (cpu {prove_cpu:.2f} s) {reasons}"
        )
        if set(reasons) - {"cosmetic", "no_data"}:  # market weekends have no data
            print("NOT MET: the cosmetic change was not proven for every cell")
            return 1
        ratio = prove / rerun
        verdict = "MET" if ratio <= TARGET_RATIO else "NOT MET"
        print(
            f"prove / re-run = {ratio:.3f} wall, {prove_cpu / rerun_cpu:.3f} cpu "
            f"(target <= {TARGET_RATIO:.2f}, on wall time): {verdict}"
        )
        print(f"load average {os.getloadavg()[0]:.1f}")
        return 0 if verdict == "MET" else 1
    finally:
        shutil.rmtree(temp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
