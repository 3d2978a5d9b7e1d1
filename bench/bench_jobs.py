"""Where ``--jobs N`` spends its CPU: per-process and per-group figures of W's cold build.

Run: ``python bench/bench_jobs.py [--size S|M] [--jobs 1 2] [--profile]``. Each build is
the real ``btbuild build //... --jobs N`` on a fresh cache (W, shared layout: see
``workload_w.py``), with a ``sitecustomize`` on the path of every process it starts (the
builder, its workers) that records, per process: its CPU (user + system) at exit, its CPU
before its first group (start-up: interpreter, imports, workspace, hashes), and per group
run (``btbuild.execution.runner.run_group``) its label, wall and CPU. ``--profile`` also
runs every process under cProfile (process CPU as the clock) and prints the functions whose
CPU differs most between the first and the last ``--jobs`` value (summed over processes).

``--ceiling N``: only N samples of what the machine itself allows ``--jobs 2``: W's bare loop
(no btbuild) alone, then two copies at once; the CPU each copy takes against alone bounds
the speed-up of any two-process build (2 / that ratio). Samples taken while other processes
used the machine are shown and not counted.

Printed per build: wall, the CPU of all processes, start-up CPU, the CPU inside groups
(first-pass / fused streams and per_date groups apart), the CPU outside groups (the
builder's deciding and recording, the SimHash registration, the pool), and the tail: wall
from the first worker's last group end to the build's end.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import workload_w as w  # noqa: E402
from bench_workload import SIZES, build_env  # noqa: E402

SITE = """\
import atexit, json, os, sys, time
_DIR = os.environ.get("BTBUILD_JOBS_PROBE")
if _DIR:
    _T0 = time.perf_counter()
    _REC = {"pid": os.getpid(), "argv": sys.argv[:3], "groups": [], "start_wall": time.time()}
    _PROF = None
    if os.environ.get("BTBUILD_JOBS_PROFILE"):
        import cProfile
        _PROF = cProfile.Profile(time.process_time)
        _PROF.enable()

    def _cpu():
        t = os.times()
        return t.user + t.system

    def _dump(final=True):
        if _PROF is not None:
            _PROF.disable()
            _PROF.dump_stats(os.path.join(_DIR, f"{os.getpid()}.prof"))
            if not final:
                _PROF.enable()
        _REC["cpu"] = _cpu()
        _REC["sys"] = os.times().system
        if final:
            import gc, resource
            _REC["objects"] = len(gc.get_objects())
            _REC["maxrss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        _REC["end_wall"] = time.time()
        with open(os.path.join(_DIR, f"{os.getpid()}.json"), "w") as out:
            json.dump(_REC, out)

    import gc
    _GC = _REC["gc"] = [[0, 0.0], [0, 0.0], [0, 0.0]]
    _GC_START = [0.0]

    def _gc(phase, info):
        if phase == "start":
            _GC_START[0] = time.process_time()
        else:
            entry = _GC[info["generation"]]
            entry[0] += 1
            entry[1] += time.process_time() - _GC_START[0]

    gc.callbacks.append(_gc)
    atexit.register(_dump)
    import btbuild.execution.runner as _runner
    _orig = _runner.run_group

    def run_group(env, group):
        if "first_cpu" not in _REC:
            _REC["first_cpu"] = _cpu()
        wall, cpu = time.time(), _cpu()
        try:
            return _orig(env, group)
        finally:
            _REC["groups"].append(
                [group.label, len(group.cells), wall, time.time(), _cpu() - cpu]
            )
            _dump(final=False)  # a pool worker may end without running atexit

    run_group.__module__, run_group.__qualname__ = _orig.__module__, "run_group"
    _runner.run_group = run_group
    _REC["marks"] = []

    def _mark(owner, attribute, label):
        original = getattr(owner, attribute)

        def marked(*args, **kwargs):
            start = time.time()
            try:
                return original(*args, **kwargs)
            finally:
                _REC["marks"].append([label, start, time.time()])

        marked.__module__ = original.__module__  # pickled by reference (pool tasks)
        marked.__qualname__ = original.__qualname__
        setattr(owner, attribute, marked)

    from btbuild.cli.deferred_judge import DeferredJudge
    from btbuild.execution import build as _build, dispatch as _dispatch, local as _local
    _mark(DeferredJudge, "after_run", "sim registration")
    _mark(_build.Scheduler, "_round", "round")
    _mark(_build.Scheduler, "_decide_group", "decide")
    _mark(_dispatch.Dispatch, "run", "dispatch")
    _mark(_local, "init_worker", "worker init")
    from btbuild.sim import isolated as _isolated
    _mark(_isolated, "_init_child", "sim child init")
    _mark(_isolated, "_serve", "sim answer")
    _child_exit = _isolated._quick_exit

    def _quick_exit(session):
        _dump()  # the sim child ends with os._exit
        _child_exit(session)

    _isolated._quick_exit = _quick_exit
    import btbuild.cli.main as _main
    _mark(_main, "main", "main")
"""


def probe_build(root: Path, jobs: int, out: Path, profile: bool, env: dict[str, str]) -> dict:
    """One cold build of ``root`` with ``--jobs jobs``; the records of its processes."""
    site = out / "site"
    site.mkdir(parents=True)
    (site / "sitecustomize.py").write_text(SITE)
    env = dict(env)
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["BTBUILD_JOBS_PROBE"] = str(out)
    if profile:
        env["BTBUILD_JOBS_PROFILE"] = "1"
    end = w.days_of(DATES)[-1]
    argv = [sys.executable, "-m", "btbuild", "--workspace", str(root), "build", "//..."]
    argv += ["--date", end.isoformat(), "--jobs", str(jobs), "--format", "json"]
    load = os.getloadavg()[0]
    start = time.time()
    usage0 = os.times()
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    stdout, stderr = proc.communicate()
    wall = time.time() - start
    usage = os.times()
    if proc.returncode != 0:
        raise SystemExit(f"build failed ({proc.returncode}):\n{stdout[-3000:]}{stderr}")
    records = [json.loads(path.read_text()) for path in out.glob("*.json")]
    total = usage.children_user + usage.children_system
    total -= usage0.children_user + usage0.children_system
    return {
        "wall": wall,
        "cpu": total,
        "records": records,
        "start": start,
        "load": load,
        "pid": proc.pid,
    }


def summary(jobs: int, run: dict) -> None:
    records = run["records"]
    builder = next(r for r in records if r["pid"] == run["pid"])
    groups = [(r["pid"], *g) for r in records for g in r["groups"]]
    fused = [g for g in groups if g[2] > 5]  # W's first pass: 20 cells (10 + 10 fused)
    per_date = [g for g in groups if g[2] <= 5]
    in_groups = sum(g[5] for g in groups)
    startup = sum(r.get("first_cpu", r["cpu"]) for r in records if r is not builder)
    workers = [r for r in records if r is not builder and r["groups"]]
    last_ends = sorted(max(g[3] for g in r["groups"]) for r in (workers or [builder]))
    first_start = min(g[3] for g in groups)
    end = run["start"] + run["wall"]
    recorded = sum(r["cpu"] for r in records)
    ends = ", +".join(f"{e - run['start']:.2f}" for e in last_ends)
    print(
        f"--jobs {jobs}: wall {run['wall']:.2f} s, cpu {run['cpu']:.2f} s "
        f"(load {run['load']:.1f} before, {os.getloadavg()[0]:.1f} after)\n"
        f"  processes recorded {len(records)} (cpu {recorded:.2f} s; not recorded, the sim's "
        f"child: {run['cpu'] - recorded:.2f} s); "
        f"builder cpu {builder['cpu']:.2f} s; other processes' start-up cpu {startup:.2f} s\n"
        f"  in groups {in_groups:.2f} s cpu: first pass {sum(g[5] for g in fused):.2f} s "
        f"({len(fused)}), per_date {sum(g[5] for g in per_date):.2f} s ({len(per_date)})\n"
        f"  head (start to first group) {first_start - run['start']:.2f} s wall; "
        f"worker last group ends at +{ends} s; "
        f"build ends at +{run['wall']:.2f} s (tail after the last group {end - last_ends[-1]:.2f} s)"
    )
    for record in records:
        spans = defaultdict(list)
        for label, begin, finish in record["marks"]:
            spans[label].append((begin - run["start"], finish - run["start"]))
        text = "; ".join(
            f"{label} +{min(b for b, _ in v):.2f}..+{max(f for _, f in v):.2f}"
            + (f" ({len(v)}x, {sum(f - b for b, f in v):.2f} s)" if len(v) > 1 else "")
            for label, v in spans.items()
        )
        print(
            f"  pid {record['pid']}: cpu {record['cpu']:.2f} s (system {record['sys']:.2f} s), "
            f"objects at exit {record.get('objects')}, max rss {record.get('maxrss')} KB, "
            f"started +{record['start_wall'] - run['start']:.2f}, "
            f"recorded exit +{record['end_wall'] - run['start']:.2f}: {text}"
        )
        gcs = ", ".join(f"gen{n} {c} x {t:.2f} s" for n, (c, t) in enumerate(record["gc"]))
        print(f"  pid {record['pid']}: gc {gcs}")
        if record["groups"]:
            wall = sum(g[3] - g[2] for g in record["groups"])
            cpu = sum(g[4] for g in record["groups"])
            print(
                f"  pid {record['pid']}: {len(record['groups'])} groups, wall in groups {wall:.2f} s, "
                f"cpu in groups {cpu:.2f} s, process cpu {record['cpu']:.2f} s"
            )


def profiles(out: Path) -> pstats.Stats | None:
    files = [str(path) for path in out.glob("*.prof")]
    return pstats.Stats(*files) if files else None


def by_name(stats: pstats.Stats) -> dict[tuple[str, int, str], tuple[int, int, float, float]]:
    """The stats keyed by file name (not path: each build has its own workspace), summed."""
    out: dict[tuple[str, int, str], tuple[int, int, float, float]] = {}
    for (path, line, name), (cc, nc, tt, ct, _) in stats.stats.items():  # type: ignore[attr-defined]
        key = (Path(path).name, line, name)
        old = out.get(key, (0, 0, 0.0, 0.0))
        out[key] = (old[0] + cc, old[1] + nc, old[2] + tt, old[3] + ct)
    return out


def compare(first: pstats.Stats, last: pstats.Stats, top: int) -> None:
    """Functions by the difference of their own CPU (tottime), last minus first."""
    a, b = by_name(first), by_name(last)
    rows = []
    for key in set(a) | set(b):
        ta = a.get(key, (0, 0, 0.0, 0.0))
        tb = b.get(key, (0, 0, 0.0, 0.0))
        rows.append((tb[2] - ta[2], ta[2], tb[2], ta[1], tb[1], key))
    rows.sort(reverse=True)
    print(
        f"\n  {'delta':>8} {'first':>8} {'last':>8} {'calls first':>12} {'calls last':>12}  function"
    )
    for delta, ta, tb, ca, cb, key in rows[:top] + [("", 0, 0, 0, 0, None)] + rows[-top // 2 :]:
        if key is None:
            print("  ...")
            continue
        name = f"{key[0]}:{key[1]}({key[2]})"
        print(f"  {delta:8.2f} {ta:8.2f} {tb:8.2f} {ca:12d} {cb:12d}  {name}")
    totals = defaultdict(float)
    for label, stats in (("first", a), ("last", b)):
        totals[label] = sum(v[2] for v in stats.values())
    print(f"  total profiled cpu: first {totals['first']:.2f} s, last {totals['last']:.2f} s")


SIZE = "M"
DATES = 30


def _busy() -> float:
    """CPU seconds the whole machine has been busy (every process, /proc/stat)."""
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _bare(root: str, dates: int) -> float:
    """CPU seconds of W's bare loop over ``dates`` dates (no btbuild: the machine's speed)."""
    started = time.process_time()
    w.bare_loop(Path(root), w.days_of(dates), SIZES[SIZE][0], tag="ceiling")
    return time.process_time() - started


def ceiling(tmp: Path, repeats: int, dates: int = 1) -> None:
    """The machine's own ceiling for ``--jobs 2``: the same CPU-bound work (W's bare loop)
    alone, then twice at once in two processes. Where the two CPUs slow each other down
    (host hyperthreads, shared caches, clocks), each copy takes more CPU than alone, and no
    build can be faster than 2 / that ratio. A sample where other processes took more than
    5% of the CPU is marked: the machine was not idle."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    root = str(w.write_workspace(tmp / "ceiling", SIZES[SIZE][0], "shared"))
    ratios = []
    with ProcessPoolExecutor(2, mp_context=get_context("spawn")) as pool:
        list(pool.map(_bare, [root, root], [dates, dates]))  # both processes warm
        for _ in range(repeats):
            busy = _busy()
            alone = pool.submit(_bare, root, dates).result()
            others_alone = _busy() - busy - alone
            busy = _busy()
            pair = list(pool.map(_bare, [root, root], [dates, dates]))
            others_pair = _busy() - busy - sum(pair)
            ratio = sum(pair) / 2 / alone
            clean = max(others_alone / alone, others_pair / sum(pair)) < 0.05
            ratios.extend([ratio] if clean else [])
            print(
                f"  bare loop alone {alone:.2f} s cpu (others {others_alone:.2f} s), two at once "
                f"{pair[0]:.2f} + {pair[1]:.2f} s (others {others_pair:.2f} s): {ratio:.3f}x"
                f"{'' if clean else '  (not idle: not counted)'}"
            )
    if ratios:
        ratios.sort()
        median = ratios[len(ratios) // 2]
        print(
            f"  CPU per copy when both CPUs work: {median:.3f}x alone (median of {len(ratios)} idle "
            f"samples): the ceiling of --jobs 2 is {2 / median:.2f}x"
        )
    else:
        print("  no idle sample: the ceiling is unknown (run again on an idle machine)")


def main() -> int:
    global SIZE, DATES
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=list(SIZES), default="M")
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--dates", type=int, help="build this many dates (default: the size's)")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--keep", help="keep the records and profiles under this folder")
    parser.add_argument(
        "--ceiling", type=int, metavar="N", help="only: N samples of the machine's --jobs 2 ceiling"
    )
    args = parser.parse_args()
    SIZE = args.size
    DATES = args.dates or SIZES[SIZE][1]
    users = SIZES[SIZE][0]
    tmp = Path(args.keep or tempfile.mkdtemp(prefix="bench-jobs-"))
    tmp.mkdir(parents=True, exist_ok=True)
    env = build_env(tmp)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    print(f"W size {SIZE}, {os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f}")
    if args.ceiling:
        ceiling(tmp, args.ceiling)
        return 0
    stats = []
    for index, jobs in enumerate(args.jobs):
        root = w.write_workspace(tmp / f"ws-{index}-{jobs}", users, "shared")
        run = probe_build(root, jobs, tmp / f"probe-{index}-{jobs}", args.profile, env)
        summary(jobs, run)
        if args.profile:
            stats.append(profiles(tmp / f"probe-{index}-{jobs}"))
    if args.profile and len(stats) > 1 and stats[0] and stats[-1]:
        compare(stats[0], stats[-1], args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
