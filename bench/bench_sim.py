"""Benchmark the SimRunner: verify time per changed demo calculation, and the mutation kill rate.

    python bench/bench_sim.py [--verify-only] [--every N]

Each demo calculation gets a behaviour-preserving edit (a module-level ``assert True``) in a copy of
the demo workspace and is verified alone against the unedited copy (fabricated contexts plus
no extra search), as ``btbuild verify`` does, twice: with cold worlds (a first run) and warm
ones (the fabricated values kept on disk by the first run, btbuild/sim/world_store.py). Target:
under 1 s for a typical calculation (the median). ``--every N``: every N-th calculation. The kill rate is the corpus mutation test's figure (tests/sim/test_mutation.py).
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "sim"))


def copy_demo(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for name in ("BUILD.toml", "calculations", "layers", "plugins", "schemas"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, folder / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.exists():
            shutil.copy(source, folder / name)
    return folder


def verify_times(every: int = 1) -> dict[str, tuple[float, float]]:
    """Per demo calculation (every ``every``-th): verify's time with cold worlds (nothing kept:
    a first run) and warm (the values kept on disk by the cold run, read back as a fresh
    process would: the in-process stores are dropped first)."""
    from btbuild.session import Session
    from btbuild.sim import changes, literals, world_store
    from btbuild.sim.verify import COSMETIC, VerifyOptions, compare_workspaces
    from btbuild.workspace.config import load_workspace

    temp = Path(tempfile.mkdtemp(prefix="bench-sim-"))
    try:
        base = copy_demo(temp / "base")
        old = load_workspace(base)
        times = {}
        for name, target in sorted(old.targets.items())[::every]:
            edited = temp / f"edit-{name}"
            shutil.copytree(base, edited)
            entry = edited / target.entry_file.relative_to(base)
            entry.write_text(entry.read_text() + '\nassert True, "a behaviour-preserving edit"\n')
            runs = []
            for _ in ("cold", "warm"):
                world_store.forget()  # and what a fresh process would not have either:
                changes.forget()
                literals.forget()
                session = Session(edited)
                assert session.hashes  # hashing is not part of verify's per-target cost
                started = time.perf_counter()
                report = compare_workspaces(
                    session, old, VerifyOptions(base="bench", search_seconds=0)
                )
                runs.append(time.perf_counter() - started)
                verdicts = {c.label: c.verdict for c in report.changed}
                if verdicts.get(target.label) != COSMETIC:
                    print(f"  unexpected verdict for {target.label}: {verdicts}")
            times[target.label] = (runs[0], runs[1])
            print(f"  cold {runs[0]:7.2f} s  warm {runs[1]:7.2f} s  {target.label}", flush=True)
        return times
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def kill_rate() -> tuple[float, int, int]:
    import test_mutation

    from btbuild.session import Session
    from btbuild.sim.runner import SimRunner

    session = Session(test_mutation.CORPUS)
    base = SimRunner(session.workspace, session.plugins.root_sources())
    every = [
        m
        for name, t in sorted(session.workspace.targets.items())
        for m in test_mutation.mutants(name, t.entry_file.read_text())
    ]
    candidates = [m for m in every if (m.key, m.description) not in test_mutation.EQUIVALENT]
    temp = Path(tempfile.mkdtemp(prefix="bench-mut-"))
    try:
        dead = sum(test_mutation.killed(base, m, temp) for m in candidates)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return dead / len(candidates), dead, len(candidates)


def coverage_overhead() -> tuple[float, float, float]:
    """Simulate every demo calculation twice on the same warm worlds (fabrication cached):
    untraced, then with coverage.py tracing its own calls over its entry file and every layer
    (what verify does for a changed calculation, in the worst case of a change touching all its
    files). Returns (untraced s, traced s, ratio)."""
    from btbuild.session import Session
    from btbuild.sim.changes import VersionFiles
    from btbuild.sim.coverage import Tracer
    from btbuild.sim.fabricator import Fabricator
    from btbuild.sim.runner import SimRunner

    session = Session(ROOT)
    workspace, sources = session.workspace, session.plugins.root_sources()
    fabricator = Fabricator(sources, start=workspace.start_date)
    warm = SimRunner(workspace, sources, fabricator=fabricator)
    for name in workspace.targets:  # fabricate everything once
        warm.simulate(name)
    tracers = {
        name: Tracer(VersionFiles.of(target, workspace).files)
        for name, target in workspace.targets.items()
    }
    plain = traced = 0.0
    for name in sorted(workspace.targets):
        runner = SimRunner(workspace, sources, fabricator=fabricator, loader=warm.loader)
        started = time.perf_counter()
        runner.simulate(name)
        plain += time.perf_counter() - started
        runner = SimRunner(
            workspace,
            sources,
            fabricator=fabricator,
            loader=warm.loader,
            trace=lambda target, name=name: (  # type: ignore[misc]
                tracers[name].tracing() if target.name == name else nullcontext()
            ),
        )
        started = time.perf_counter()
        runner.simulate(name)
        traced += time.perf_counter() - started
    return plain, traced, traced / plain


def main() -> int:
    verify_only = "--verify-only" in sys.argv
    every = int(sys.argv[sys.argv.index("--every") + 1]) if "--every" in sys.argv else 1
    if not verify_only:
        plain, traced, ratio = coverage_overhead()
        print(
            f"coverage tracing: {plain:.2f} s untraced vs {traced:.2f} s traced for every demo "
            f"calculation on warm worlds: x{ratio:.2f} (target <= x1.5 of the simulation "
            f"itself): {'MET' if ratio <= 1.5 else 'NOT MET'}"
        )
    times = verify_times(every)
    cold = [pair[0] for pair in times.values()]
    warm = [pair[1] for pair in times.values()]
    for label, name in (("cold worlds", cold), ("warm worlds (kept on disk)", warm)):
        median, worst = statistics.median(name), max(name)
        print(
            f"verify per changed calculation, {label}: median {median:.3f} s, max {worst:.3f} s "
            f"over {len(name)} calculations (target < 1 s typical): "
            f"{'met' if median < 1.0 else 'NOT met'}"
        )
    print(
        f"warm / cold (median of the per-calculation ratios): "
        f"{statistics.median(w / c for c, w in zip(cold, warm, strict=True)):.2f}"
    )
    if verify_only:
        return 0
    started = time.perf_counter()
    rate, dead, total = kill_rate()
    print(
        f"mutation kill rate: {rate:.1%} ({dead} of {total} non-equivalent mutants, "
        f"{time.perf_counter() - started:.1f} s) (target >= 95%): {'met' if rate >= 0.95 else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
