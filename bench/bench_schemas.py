"""Benchmark of output-schema validation (issue 16): which library, and what it costs a cell.

Run: ``python bench/bench_schemas.py [--users 200000] [--cell-users 20000]``. Every figure is
measured in this one run (the machine is shared and noisy).

1. library: ``jsonschema`` (Draft 2020-12 validator, compiled once), ``fastjsonschema``
   (generates a Python function per schema; btbuild's choice before, compared when installed)
   and ``jsonschema-rs`` (Rust; btbuild's choice) on the same result values of ``--users`` users
   of one per_user cell (a realistic nested result: totals, a risk object, a positions list).
   Both must agree on every value (a tenth of them are made invalid).
2. cell: one per_user cell of ``--cell-users`` users on one date, built by ``btbuild build``
   without a schema, with validation through btbuild's SchemaCheck on exactly the values
   that cell produced timed separately (each the minimum of 3 runs: the machine is shared).
   Target: validation <= 10% of the cell's time. Two
   result shapes: "nested" (the schema above: a risk object and a list of ~4 positions per
   user) and "flat" (three numbers, like most demo results).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

SCHEMA = {
    "type": "object",
    "required": ["total", "invested", "risk", "positions"],
    "additionalProperties": False,
    "properties": {
        "total": {"type": "number"},
        "invested": {"type": "number", "minimum": 0},
        "risk": {
            "type": "object",
            "required": ["score", "band"],
            "properties": {
                "score": {"type": "integer", "minimum": 0, "maximum": 100},
                "band": {"enum": ["low", "medium", "high"]},
            },
        },
        "positions": {
            "type": "array",
            "maxItems": 50,
            "items": {
                "type": "object",
                "required": ["symbol", "weight"],
                "properties": {
                    "symbol": {"type": "string", "minLength": 1},
                    "weight": {"type": "number", "minimum": 0, "maximum": 1},
                },
            },
        },
    },
}

ROOT_BUILD = """\
[workspace]
name = "bench"
plugins = ["btbuild.plugins.market"]
start_date = "2024-01-01"

[plugin.market]
users = {users}
instruments = 300
seed = 7
"""

CALC_BUILD = """\
[calculation.book]
entry = "calcs:{entry}"
roots = ["portfolio", "prices"]
"""

FLAT_SCHEMA = {
    "type": "object",
    "required": ["total", "invested", "positions"],
    "properties": {
        "total": {"type": "number"},
        "invested": {"type": "number", "minimum": 0},
        "positions": {"type": "integer", "minimum": 0},
    },
}

CALCS = """\
def flat(ctx):
    prices = ctx.root("prices")
    record = ctx.user["portfolio"]
    invested = sum(p["quantity"] * prices[p["symbol"]]["close"] for p in record["positions"])
    return {
        "total": round(invested + record["cash"], 2),
        "invested": round(invested, 2),
        "positions": len(record["positions"]),
    }


def book(ctx):
    prices = ctx.root("prices")
    record = ctx.user["portfolio"]
    values = [(p["symbol"], p["quantity"] * prices[p["symbol"]]["close"]) for p in record["positions"]]
    invested = sum(value for _, value in values)
    score = min(100, int(len(values) * 7))
    return {
        "total": round(invested + record["cash"], 2),
        "invested": round(invested, 2),
        "risk": {"score": score, "band": "low" if score < 30 else "medium" if score < 70 else "high"},
        "positions": [
            {"symbol": symbol, "weight": round(value / invested, 6) if invested else 0.0}
            for symbol, value in values
        ],
    }
"""


def values(count: int) -> list[dict]:
    rng = random.Random(7)
    out = []
    for index in range(count):
        n = rng.randint(0, 8)
        value = {
            "total": round(rng.uniform(0, 1e6), 2),
            "invested": round(rng.uniform(0, 1e6), 2),
            "risk": {"score": rng.randint(0, 100), "band": rng.choice(["low", "medium", "high"])},
            "positions": [
                {"symbol": f"S{rng.randint(0, 999)}", "weight": rng.random()} for _ in range(n)
            ],
        }
        if index % 10 == 0:  # a tenth invalid, in different places
            value["risk"]["score"] = 101 if index % 20 == 0 else "high"
        out.append(value)
    return out


def library(count: int) -> None:
    """jsonschema, fastjsonschema (when installed: it was btbuild's choice before) and
    jsonschema-rs (btbuild's choice) on the same values: same verdicts, time per value."""
    import jsonschema
    import jsonschema_rs

    items = values(count)
    contenders = {"jsonschema": jsonschema.Draft202012Validator(SCHEMA).is_valid}
    try:
        import fastjsonschema
    except ImportError:
        print("  (fastjsonschema is not installed: pip install fastjsonschema to compare it)")
    else:
        fast = fastjsonschema.compile(SCHEMA)

        def fast_ok(value: dict) -> bool:
            try:
                fast(value)
            except fastjsonschema.JsonSchemaValueException:
                return False
            return True

        contenders["fastjsonschema"] = fast_ok
    contenders["jsonschema-rs"] = jsonschema_rs.validator_for(SCHEMA).is_valid
    times: dict[str, float] = {}
    verdicts: dict[str, list[bool]] = {}
    for name, is_valid in contenders.items():
        start = time.perf_counter()
        verdicts[name] = [is_valid(value) for value in items]
        times[name] = time.perf_counter() - start
    reference = verdicts["jsonschema"]
    assert all(found == reference for found in verdicts.values()), "the libraries disagree"
    print(
        f"[library] {count} values of one per_user cell ({reference.count(False)} invalid), same verdicts"
    )
    for name, seconds in times.items():
        print(f"  {name:15} {seconds:7.2f} s  {seconds / count * 1e6:6.2f} us/value")
    for name, seconds in times.items():
        if name != "jsonschema-rs":
            print(f"  jsonschema-rs is {seconds / times['jsonschema-rs']:.1f}x faster than {name}")


REPEATS = 3  # builds and validations are each timed this often; the minimum counts


def cell(users: int, shape: str) -> None:
    import json

    from btbuild.execution.build import BuildRequest, Scheduler
    from btbuild.execution.schemas import SchemaCheck
    from btbuild.session import Session

    cell_times = []
    for _attempt in range(REPEATS):  # the least disturbed of a few cold builds
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            (root / "calculations" / "calc").mkdir(parents=True)
            (root / "BUILD.toml").write_text(ROOT_BUILD.format(users=users))
            entry = "book" if shape == "nested" else "flat"
            schema = SCHEMA if shape == "nested" else FLAT_SCHEMA
            (root / "calculations" / "calc" / "BUILD.toml").write_text(
                CALC_BUILD.format(entry=entry)
            )
            (root / "calculations" / "calc" / "calcs.py").write_text(CALCS)
            day = date(2024, 1, 2)
            session = Session(root)
            try:
                start = time.perf_counter()
                report = Scheduler(session, BuildRequest(("//...",), end=day, start=day)).run()
                cell_times.append(time.perf_counter() - start)
                result = session.backend.read_result("book", day.isoformat())
            finally:
                session.close()
            assert report.summary()["ran"] == 1, report.summary()
    cell_time = min(cell_times)
    validations = []
    for _ in range(REPEATS):
        check = SchemaCheck("//calc:book", json.dumps(schema, sort_keys=True), "per_user")
        start = time.perf_counter()
        for user_id, value in result.items():
            check.observe(user_id, value)
        problems = check.finish()
        validations.append(time.perf_counter() - start)
    validation = min(validations)
    assert not problems, problems
    ratio = validation / cell_time
    print(
        f"[cell {shape}] one per_user cell of {len(result)} users (build of one date, cold cache)"
    )
    print(f"  cell            {cell_time:7.2f} s  (min of {REPEATS} cold builds)")
    print(
        f"  validation      {validation:7.3f} s  (min of {REPEATS}; btbuild SchemaCheck, jsonschema-rs)"
    )
    print(
        f"  share           {ratio:7.1%}  (target <= 10%: {'MET' if ratio <= 0.10 else 'NOT MET'})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--cell-users", type=int, default=20_000)
    args = parser.parse_args()
    library(args.users)
    for shape in ("flat", "nested"):
        cell(args.cell_users, shape)
    return 0


if __name__ == "__main__":
    sys.exit(main())
