"""Benchmark: cold vs warm hashing of 1,000 generated calculations of ~150 lines.

Cold: empty hash cache, every file parsed and normalized. Warm: nothing changed, a new
HashCache instance loaded from disk. Targets: warm < 0.5 s wall and >= 20x faster than cold.

    python bench/bench_hashing.py [--calcs N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from btbuild.hashing import DistributionIndex, HashCache, compute_hashes
from btbuild.workspace.model import ExecutionSettings, StorageSettings, Target, Workspace

WARM_LIMIT_SECONDS = 0.5
MIN_SPEEDUP = 20.0


def calc_source(index: int) -> str:
    """A ~150-line calculation: imports, helpers, a class with several methods."""
    lines = [
        f'"""Generated calculation number {index}."""',
        "import math",
        "from collections import defaultdict",
        "",
        f"from layers.helpers_{index % 10} import scale",
        "",
        f"WINDOW = {index % 30 + 1}",
        "",
    ]
    for helper in range(6):
        lines += [
            f"def helper_{helper}(values, factor={helper + 1}):",
            f'    """Helper {helper}."""',
            "    total = 0.0",
            "    for position, value in enumerate(values):",
            "        # weight later values more",
            f"        total += value * factor * (position + {helper})",
            "    squares = [v * v for v in values if v]",
            "    return total / max(len(squares), 1)",
            "",
        ]
    lines += [f"class Calc{index}:", f'    """Calculation {index}."""', ""]
    for method in range(8):
        lines += [
            f"    def step_{method}(self, ctx, rows):",
            "        grouped = defaultdict(list)",
            "        for row in rows:",
            f"            grouped[row['symbol']].append(row['qty'] * {method + 1})",
            "        result = {",
            "            symbol: helper_0(values) + math.sqrt(abs(sum(values)))",
            "            for symbol, values in grouped.items()",
            "        }",
            f"        return {{k: scale(v, {method}) for k, v in result.items()}}",
            "",
        ]
    lines += [
        "    def process(self, ctx):",
        '        rows = ctx.user["portfolio"]',
        '        prices = ctx.root("prices")',
        "        out = {}",
        "        for step in (self.step_0, self.step_1, self.step_2, self.step_3):",
        "            out.update(step(ctx, rows))",
        "        if not out:",
        "            return None",
        "        risk = sum(out.values()) / WINDOW",
        '        return {"risk": risk, "n": len(prices)}',
    ]
    return "\n".join(lines) + "\n"


def build_workspace(root: Path, count: int) -> Workspace:
    package = root / "calculations" / "gen"
    package.mkdir(parents=True)
    (root / "layers").mkdir()
    for layer in range(10):
        (root / "layers" / f"helpers_{layer}.py").write_text(
            f"def scale(value, step):\n    return value * (step + {layer})\n", encoding="utf-8"
        )
    targets: dict[str, Target] = {}
    for index in range(count):
        name = f"calc_{index:04d}"
        (package / f"{name}.py").write_text(calc_source(index), encoding="utf-8")
        deps = (f"//gen:calc_{index - 1:04d}",) if index % 5 else ()
        targets[name] = Target(
            name=name,
            package="gen",
            entry_file=package / f"{name}.py",
            entry_attr=f"Calc{index}",
            deps=deps,
        )
    return Workspace(
        root=root,
        name="bench",
        packages_dir=root / "calculations",
        epoch=1,
        plugins=(),
        start_date=date(2024, 1, 1),
        storage=StorageSettings(),
        execution=ExecutionSettings(),
        targets=targets,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calcs", type=int, default=1000)
    args = parser.parse_args(argv)
    DistributionIndex.installed().versions_for([])  # load the metadata index outside the timings
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        workspace = build_workspace(root, args.calcs)
        lines = sum(len(t.entry_file.read_text().splitlines()) for t in workspace.targets.values())

        start = time.perf_counter()
        cold = compute_hashes(workspace, cache=HashCache.for_workspace(root))
        cold_seconds = time.perf_counter() - start

        start = time.perf_counter()
        warm_cache = HashCache.for_workspace(root)
        warm = compute_hashes(workspace, cache=warm_cache)
        warm_seconds = time.perf_counter() - start

    if warm != cold:
        print("FAIL: warm hashes differ from cold hashes")
        return 1
    speedup = cold_seconds / warm_seconds
    warm_ok = warm_seconds < WARM_LIMIT_SECONDS
    speedup_ok = speedup >= MIN_SPEEDUP
    print(
        f"calculations: {args.calcs} files, {lines / args.calcs:.0f} lines each on average, 10 shared layers"
    )
    print(
        f"cold (empty cache):        {cold_seconds:8.3f} s   {cold_seconds / args.calcs * 1000:.1f} ms per calculation"
    )
    print(
        f"warm (cache from disk):    {warm_seconds:8.3f} s   hits={warm_cache.hits} misses={warm_cache.misses}"
    )
    print(f"speedup cold/warm:         {speedup:8.1f} x")
    print(f"target warm < {WARM_LIMIT_SECONDS} s:        {'met' if warm_ok else 'NOT met'}")
    print(f"target speedup >= {MIN_SPEEDUP:.0f}x:      {'met' if speedup_ok else 'NOT met'}")
    return 0 if warm_ok and speedup_ok else 1


if __name__ == "__main__":
    sys.exit(main())
