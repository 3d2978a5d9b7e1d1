"""Benchmark: load + graph + rdeps query on a generated workspace vs bare tomllib parsing.

A workspace of 5,000 targets in 50 packages and 20,000 dependency edges is generated in a
temporary folder. We time (best of N runs, in this one process so the ratio is fair):

* bare: reading and ``tomllib.loads`` of every BUILD.toml (the floor any loader pays);
* btbuild: ``load_workspace`` (validation, labels, entry files) + ``graph_of`` (passes) +
  ``run_query('rdeps(//..., X)')``.

Target (issue 2): btbuild within 3x of the bare parse.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import time
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

from btbuild.graph.graph import graph_of
from btbuild.graph.query import run_query
from btbuild.workspace.config import load_workspace

TARGETS = 5_000
EDGES = 20_000
PACKAGES = 50
RUNS = 5


def generate(root: Path, seed: int = 7) -> str:
    rng = random.Random(seed)
    (root / "BUILD.toml").write_text('[workspace]\nname = "bench"\n')
    names = [f"t{i:05d}" for i in range(TARGETS)]
    package_of = {name: f"pkg{i % PACKAGES:02d}" for i, name in enumerate(names)}
    deps: dict[str, set[str]] = {name: set() for name in names}
    edges = 0
    while edges < EDGES:
        i = rng.randrange(1, TARGETS)
        j = rng.randrange(0, i)  # only lower-numbered deps: acyclic
        if names[j] not in deps[names[i]]:
            deps[names[i]].add(names[j])
            edges += 1
    by_package: dict[str, list[str]] = {}
    for name in names:
        by_package.setdefault(package_of[name], []).append(name)
    for package, members in by_package.items():
        folder = root / "calculations" / package
        folder.mkdir(parents=True)
        (folder / "calc.py").write_text("def run(ctx):\n    return 1\n")
        lines = []
        for name in members:
            labels = sorted(f"//{package_of[d]}:{d}" for d in deps[name])
            lines.append(f"[calculation.{name}]")
            lines.append('entry = "calc:run"')
            lines.append('roots = ["prices"]')
            lines.append("deps = [" + ", ".join(f'"{label}"' for label in labels) + "]\n")
        (folder / "BUILD.toml").write_text("\n".join(lines))
    return f"//{package_of[names[0]]}:{names[0]}"


def bare_parse(root: Path) -> int:
    count = 0
    for folder, _dirs, files in os.walk(root):
        if "BUILD.toml" in files:
            count += len(tomllib.loads((Path(folder) / "BUILD.toml").read_text()))
    return count


def btbuild_load(root: Path, query: str) -> int:
    graph = graph_of(load_workspace(root))
    return len(run_query(graph, query).labels)


def best(fn, *args) -> float:
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        first = generate(root)
        query = f"rdeps(//..., {first})"
        matched = btbuild_load(root, query)
        bare = best(bare_parse, root)
        full = best(btbuild_load, root, query)
    ratio = full / bare
    print(
        f"workspace: {TARGETS} targets, {EDGES} edges, {PACKAGES} packages; query {query!r} -> {matched} targets"
    )
    print(f"bare tomllib parse:             {bare * 1000:8.1f} ms (best of {RUNS})")
    print(f"btbuild load + graph + query:   {full * 1000:8.1f} ms (best of {RUNS})")
    print(f"ratio: {ratio:.2f}x  (target <= 3x: {'MET' if ratio <= 3 else 'NOT MET'})")
    return 0 if ratio <= 3 else 1


if __name__ == "__main__":
    sys.exit(main())
