"""Issue 14's benchmark: workload W built by btbuild and by a bare in-memory loop, same run.

Run: ``python bench/bench_workload.py`` (size S: 2,000 users x 10 dates, both layouts, about
a minute on an idle machine), ``--size M`` (20,000 users x 30 dates), ``--jobs 2``,
``--profile`` (the cold build once more in-process under cProfile: where the time goes),
``--memory`` (peak RSS of one cold date at 20k vs 200k users; ``--memory-per-user``: the
same building only the per_user targets), ``--layout shared|percalc``, ``--quick N`` (cold
and no-op only, then a fresh cold build with ``--jobs N``: the speed-up), ``--scaling N``
(cold with --jobs 1 and N only).

For each size and layout (see ``workload_w.py``) it prints, each as wall and CPU seconds and
as ratios to the bare loop measured in the same run:

* cold: empty cache, every cell runs (the bare loop: every formula over every user and date,
  values kept in memory, each cell pickled to a file); target: CPU <= 2x the bare loop's;
* no-op: nothing changed (the bare loop: reload every pickle); targets: at most the bare
  reload's wall time, and under 1 s of btbuild's own time (interpreter start excluded);
* leaf change (one per_date formula edited), root change (one first-layer formula edited),
  comment (a comment added to a formula), rename (a local variable renamed): the units
  (cells) btbuild ran against the minimum; target: equal. The minimum is measured with the
  bare loop before and after the edit: the edited formula's cells plus every cell one of
  whose deps' values changed on that date.

Every build is the real ``btbuild build //... --date D`` in a fresh process (CPU includes
its worker processes). MET / NOT MET per target.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import workload_w as w  # noqa: E402

SIZES = {"S": (2_000, 10), "M": (20_000, 30)}
SCENARIOS = ["leaf change", "root change", "comment", "rename"]

DRIVER = """\
import json, os, sys, time
start, cpu = time.perf_counter(), time.process_time()
from btbuild.cli.deferred_judge import DeferredJudge
sim = {"wall": 0.0, "cpu": 0.0, "children": None}
register = DeferredJudge.after_run
def after_run(self, targets):  # the sim's SimHash registration after the build: timed apart
    wall, own, kids = time.perf_counter(), time.process_time(), os.times()
    if sim["children"] is None:
        sim["children"] = kids.children_user + kids.children_system
    try:
        return register(self, targets)
    finally:
        sim["wall"] += time.perf_counter() - wall
        sim["cpu"] += time.process_time() - own
DeferredJudge.after_run = after_run
from btbuild.cli.main import main
code = main(sys.argv[2:])
own = time.process_time() - cpu
children = os.times()
kids = children.children_user + children.children_system
with open(sys.argv[1], "w") as out:
    json.dump({"wall": time.perf_counter() - start, "own_cpu": own, "cpu": own + kids,
               "sim_wall": sim["wall"],  # the sim child ran from the registration on
               "sim_cpu": sim["cpu"] + (kids - sim["children"] if sim["children"] is not None else 0.0),
               "code": code}, out)
"""


def build_env(tmp: Path) -> dict[str, str]:
    """The environment of the measured builds: bytecode is cached (under ``tmp``), as an
    installed package has it, even where PYTHONDONTWRITEBYTECODE is set (this machine's
    sessions set it; compiling btbuild's sources again in every build process costs a no-op
    about 0.2 s that no installation pays)."""
    env = dict(os.environ)
    if env.pop("PYTHONDONTWRITEBYTECODE", None) is not None:
        env.setdefault("PYTHONPYCACHEPREFIX", str(tmp / "pycache"))
    return env


ENV: dict[str, str] = dict(os.environ)  # set by main()


@dataclass
class Measure:
    wall: float
    cpu: float
    own_wall: float = 0.0  # inside the process, interpreter start excluded
    ran: int = 0
    summary: str = ""
    own_cpu: float = 0.0  # the build process alone (no workers, no sim child)
    sim_wall: float = 0.0  # the SimHash registration after the build (btbuild/sim)
    sim_cpu: float = 0.0  # ... its CPU, the sim child's included

    def without_sim(self) -> str:
        return f"without sim registration: wall {self.wall - self.sim_wall:7.2f} s  cpu {self.cpu - self.sim_cpu:7.2f} s"


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_build(root: Path, end: date, jobs: int) -> Measure:
    marker = root / ".bench-own.json"
    argv = [sys.executable, "-c", DRIVER, str(marker), "--workspace", str(root), "build"]
    argv += ["//...", "--date", end.isoformat(), "--jobs", str(jobs), "--format", "json"]
    cpu0, wall0 = children_cpu(), time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, env=ENV)
    wall, cpu = time.perf_counter() - wall0, children_cpu() - cpu0
    if proc.returncode != 0:
        raise SystemExit(f"build failed ({proc.returncode}):\n{proc.stdout[-3000:]}{proc.stderr}")
    own = json.loads(marker.read_text())
    summary = json.loads(proc.stdout)["summary"]
    text = ", ".join(f"{v} {k}" for k, v in summary.items() if v)
    return Measure(
        wall,
        cpu,
        own["wall"],
        summary.get("ran", 0),
        text,
        own["own_cpu"],
        own["sim_wall"],
        own["sim_cpu"],
    )


def timed(function, *args, **kwargs):  # type: ignore[no-untyped-def]
    wall0, cpu0 = time.perf_counter(), time.process_time()
    value = function(*args, **kwargs)
    return value, Measure(time.perf_counter() - wall0, time.process_time() - cpu0)


def verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


class Report:
    def __init__(self) -> None:
        self.verdicts: list[tuple[str, bool]] = []

    def check(self, what: str, ok: bool) -> str:
        self.verdicts.append((what, ok))
        return verdict(ok)


def bench_size(
    size: str, layouts: list[str], jobs: int, report: Report, tmp: Path, quick: int = 0
) -> None:
    users, count = SIZES[size]
    days = w.days_of(count)
    end = days[-1]
    bare_root = w.write_workspace(tmp / f"bare-{size}", users, "shared")
    pickles = tmp / f"pickles-{size}"
    pickles.mkdir()
    w.bare_loop(bare_root, days[:1], min(users, 200), tag="warm")
    before, bare = timed(w.bare_loop, bare_root, days, users, pickles, "cold")
    _, reload = timed(w.bare_reload, pickles)
    print(f"\n== size {size}: {users} users x {count} dates, 25 targets, --jobs {jobs}")
    print(f"  bare loop cold    wall {bare.wall:7.2f} s  cpu {bare.cpu:7.2f} s")
    print(f"  bare reload       wall {reload.wall:7.2f} s  cpu {reload.cpu:7.2f} s")
    minimums: dict[str, int] = {}
    for index, scenario in enumerate([] if quick else SCENARIOS):
        edited = w.apply_edit(bare_root, "shared", scenario)
        after = w.bare_loop(bare_root, days, users, tag=f"edit{index}")
        minimums[scenario] = w.minimum_units(edited, before, after) if w.EDITS[scenario][3] else 0
        if not w.EDITS[scenario][3] and after != before:
            raise SystemExit(f"edit {scenario!r} was meant to be cosmetic but changed values")
        before = after
    for layout in layouts:
        root = w.write_workspace(tmp / f"ws-{size}-{layout}", users, layout)
        print(f"  -- layout {layout}")
        cold = run_build(root, end, jobs)
        cpu_ratio = cold.cpu / bare.cpu
        print(
            f"  cold              wall {cold.wall:7.2f} s ({cold.wall / bare.wall:5.2f}x)  cpu {cold.cpu:7.2f} s "
            f"({cpu_ratio:5.2f}x)  units {cold.ran}  [{cold.summary}]  cpu <= 2x: "
            f"{report.check(f'{size} {layout} cold cpu <= 2x bare', cpu_ratio <= 2.0)}"
        )
        print(
            f"    {cold.without_sim()} ({(cold.cpu - cold.sim_cpu) / bare.cpu:5.2f}x); "
            f"the sim's registration: wall {cold.sim_wall:.2f} s, cpu {cold.sim_cpu:.2f} s"
        )
        noop = run_build(root, end, jobs)
        ok_wall = noop.wall <= reload.wall
        ok_own = noop.own_wall < 1.0
        print(
            f"  no-op             wall {noop.wall:7.2f} s ({noop.wall / reload.wall:5.2f}x reload)  cpu {noop.cpu:7.2f} s  "
            f"own {noop.own_wall:5.2f} s (cpu {noop.own_cpu:4.2f} s)  units {noop.ran}  <= reload: "
            f"{report.check(f'{size} {layout} no-op <= bare reload', ok_wall)}  own < 1 s: "
            f"{report.check(f'{size} {layout} no-op own < 1 s', ok_own)}"
        )
        if quick:  # cold and no-op only, then a cold build with --jobs ``quick``
            again = run_build(
                w.write_workspace(tmp / f"ws-{size}-{layout}-j", users, layout), end, quick
            )
            speedup = cold.wall / again.wall
            print(
                f"  cold --jobs {quick}    wall {again.wall:7.2f} s  cpu {again.cpu:7.2f} s  speed-up "
                f"{speedup:.2f}x (load average {os.getloadavg()[0]:.1f})  >= 1.7x: "
                f"{report.check(f'{size} {layout} --jobs {quick} >= 1.7x', speedup >= 1.7)}"
            )
            bare_speedup = (cold.wall - cold.sim_wall) / (again.wall - again.sim_wall)
            print(f"    {again.without_sim()}  speed-up without it {bare_speedup:.2f}x")
            continue
        for scenario in SCENARIOS:
            w.apply_edit(root, layout, scenario)
            change = run_build(root, end, jobs)
            minimum = minimums[scenario]
            print(
                f"  {scenario:<17} wall {change.wall:7.2f} s ({change.wall / bare.wall:5.2f}x)  cpu {change.cpu:7.2f} s "
                f"({change.cpu / bare.cpu:5.2f}x)  units {change.ran} (minimum {minimum})  "
                f"{report.check(f'{size} {layout} {scenario} units == minimum', change.ran == minimum)}"
                f"  [{change.summary}]"
            )


def profile_cold(size: str, layout: str, tmp: Path, top: int, out: str | None = None) -> None:
    """The cold build once more in this process under cProfile: what remains."""
    import cProfile
    import pstats

    from btbuild.cli.commands.build import run_build as cli_build
    from btbuild.execution.build import BuildRequest
    from btbuild.session import Session

    users, count = SIZES[size]
    root = w.write_workspace(tmp / f"profile-{size}-{layout}", users, layout)
    session = Session(root)
    request = BuildRequest(patterns=("//...",), end=w.days_of(count)[-1])
    profiler = cProfile.Profile(time.process_time)  # CPU: wall time is the other sessions'
    try:
        profiler.enable()
        report = cli_build(session, request, "json")
        profiler.disable()
    finally:
        session.close()
    print(f"\n== profile: cold build, size {size}, layout {layout}: {report.summary()}")
    stats = pstats.Stats(profiler)
    if out:
        stats.dump_stats(out)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


def peak_rss(users: int, per_user_only: bool = False) -> int:
    patterns = (
        [f"//w:{name}" for name in w.NAMES if w.kind_of(name) == "per_user"]
        if per_user_only
        else ["//..."]
    )
    code = (
        "import resource, sys, tempfile; from pathlib import Path;"
        "sys.path.insert(0, 'bench'); import workload_w as w;"
        "from btbuild.cli.main import main;"
        f"root = w.write_workspace(Path(tempfile.mkdtemp()), {users}, 'percalc');"
        f"main(['--workspace', str(root), 'build', *{patterns!r}, '--date', w.START.isoformat(), '--format', 'json']);"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
        env=ENV,
    )
    return int(proc.stderr.strip().splitlines()[-1])


def memory(report: Report, per_user_only: bool = False) -> None:
    small, large = peak_rss(20_000, per_user_only), peak_rss(200_000, per_user_only)
    ratio = large / small
    what = "the 20 per_user targets" if per_user_only else "//..."
    print(f"\n== memory: peak RSS of a cold build of one date (percalc layout, {what})")
    print(f"   20000 users {small / 1024:8.1f} MB\n  200000 users {large / 1024:8.1f} MB")
    label = f"memory 200k/20k <= 1.2x ({what})"
    print(f"  ratio {ratio:.2f}x  <= 1.2x: {report.check(label, ratio <= 1.2)}")


def warm_up(tmp: Path) -> None:
    """A small cold build with ``--jobs 2`` before anything is measured: every module a
    build, its workers and the sim's child import is compiled to the bytecode cache then, so
    the first measured build (usually ``--jobs 1``) does not pay for it alone (0.7 s of wall
    at M, which flattered the ``--jobs`` speed-up)."""
    root = w.write_workspace(tmp / "warm-up", 200, "shared")
    started = time.perf_counter()
    run_build(root, w.days_of(2)[-1], 2)
    print(f"bytecode cache warmed by a small build: {time.perf_counter() - started:.2f} s")


def scaling(size: str, jobs: int, report: Report, tmp: Path) -> None:
    """Cold builds of ``size`` with --jobs 1 and --jobs N, each on a fresh cache."""
    users, count = SIZES[size]
    end = w.days_of(count)[-1]
    runs = {}
    for n in (1, jobs):
        root = w.write_workspace(tmp / f"scaling-{size}-{n}", users, "shared")
        load = os.getloadavg()[0]
        cold = runs[n] = run_build(root, end, n)
        print(
            f"  cold --jobs {n}    wall {cold.wall:7.2f} s  cpu {cold.cpu:7.2f} s  "
            f"(load average {load:.1f} before, {os.getloadavg()[0]:.1f} after)\n"
            f"    {cold.without_sim()}  (the build process alone: cpu {cold.own_cpu:.2f} s)"
        )
    speedup = runs[1].wall / runs[jobs].wall
    bare = (runs[1].wall - runs[1].sim_wall) / (runs[jobs].wall - runs[jobs].sim_wall)
    print(
        f"  --jobs {jobs} speed-up {speedup:.2f}x ({bare:.2f}x without the sim registration)  "
        f">= 1.7x: {report.check(f'{size} --jobs {jobs} >= 1.7x --jobs 1', speedup >= 1.7)}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=["S", "M", "both"], default="S")
    parser.add_argument("--layout", choices=["shared", "percalc", "both"], default="both")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="cProfile the cold build")
    parser.add_argument("--top", type=int, default=25, help="profile rows")
    parser.add_argument("--profile-out", help="also write the profile (pstats) to this file")
    parser.add_argument("--memory", action="store_true", help="peak RSS 20k vs 200k users")
    parser.add_argument(
        "--memory-per-user",
        action="store_true",
        help="the same, building the per_user targets only",
    )
    parser.add_argument(
        "--scaling", type=int, metavar="N", help="only: cold wall time with --jobs 1 vs --jobs N"
    )
    parser.add_argument("--skip-builds", action="store_true", help="only --profile/--memory")
    parser.add_argument(
        "--no-bytecode-cache",
        action="store_true",
        help="keep PYTHONDONTWRITEBYTECODE for the builds (each compiles btbuild again)",
    )
    parser.add_argument(
        "--quick",
        type=int,
        default=0,
        metavar="N",
        help="cold and no-op only (no edits), then a fresh cold build with --jobs N",
    )
    args = parser.parse_args()
    sizes = ["S", "M"] if args.size == "both" else [args.size]
    layouts = ["shared", "percalc"] if args.layout == "both" else [args.layout]
    report = Report()
    print(
        f"workload W, python {sys.version.split()[0]}, {os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f}"
    )
    tmp = Path(tempfile.mkdtemp(prefix="bench-w-"))
    if not args.no_bytecode_cache:
        ENV.update(build_env(tmp))
        ENV.pop("PYTHONDONTWRITEBYTECODE", None)
    print(f"bytecode cached for the builds: {'PYTHONDONTWRITEBYTECODE' not in ENV}")
    try:
        if args.scaling or not args.skip_builds:
            warm_up(tmp)
        for size in sizes:
            if args.scaling:
                print(f"\n== size {size}: --jobs scaling on a cold build ({os.cpu_count()} cpus)")
                scaling(size, args.scaling, report, tmp)
            elif not args.skip_builds:
                bench_size(size, layouts, args.jobs, report, tmp, args.quick)
        if args.profile:
            profile_cold(sizes[-1], layouts[0], tmp, args.top, args.profile_out)
        if args.memory:
            memory(report)
        if args.memory_per_user:
            memory(report, per_user_only=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    met = sum(ok for _, ok in report.verdicts)
    print(f"\n{met} of {len(report.verdicts)} targets MET")
    for what, ok in report.verdicts:
        if not ok:
            print(f"  NOT MET: {what}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
