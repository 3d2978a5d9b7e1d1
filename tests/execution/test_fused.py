"""Fused per-user streams give exactly the unfused build: the same cells, statuses, reasons,
input keys, result hashes and values, and the same failure accounting (a failing target's
fused dependents are blocked as when they ran in their own pass, its siblings commit).

The workspace has three per_user layers over two user sources (one optional, with data on
some days only), a segment, a target failing for every user (breaker) and one failing for
one user (within max_failure_rate), values whose keys come unsorted, tuples-free containers
and negative zeros (what a dependent reads from the cache is canonical JSON: fused hand-offs
must give the same), a historical target and one with dep_lookback (both fall back to their
own pass), and per_date aggregates. The same builds run with ``BTBUILD_FUSE=0`` in a twin
workspace; the fused build must really fuse (the layer-2/3 streams are not read back).
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from btbuild.storage import base as storage_base
from tests.execution.conftest import USERS, Workspace, make_workspace

GOLD = set(USERS[::3])

SEGMENT = """
[segment.gold]
source = "portfolio"
field = "tier"
values = ["gold"]
"""

BUILD = """
[calculation.qty]
entry = "l1:qty"
roots = ["portfolio"]
optional_roots = ["bonus"]

[calculation.mixed]
entry = "l2:mixed"
deps = ["//pricing:value", ":qty"]

[calculation.keys]
entry = "l3:keys"
deps = [":mixed"]

[calculation.gold_mixed]
entry = "l2:gold_mixed"
deps = [":mixed"]
roots = ["portfolio"]
users = "gold"

[calculation.broken]
entry = "l2:broken"
deps = [":qty"]

[calculation.broken_child]
entry = "l3:broken_child"
deps = [":broken"]

[calculation.one_bad]
entry = "l2:one_bad"
deps = [":qty"]

[calculation.one_bad_child]
entry = "l3:one_bad_child"
deps = [":one_bad", ":keys"]

[calculation.running]
entry = "l3:running"
deps = [":mixed"]
historical = true

[calculation.trend]
entry = "l3:trend"
deps = [":mixed"]
dep_lookback = { mixed = 1 }

[calculation.summary]
entry = "agg:summary"
kind = "per_date"
deps = [":keys", ":one_bad_child", ":gold_mixed"]
"""

L1 = """
def qty(ctx):
    bonus = ctx.user.get("bonus")
    base = sum(p["quantity"] for p in ctx.user["portfolio"]["positions"])
    return base + (bonus["extra"] if bonus else 0)
"""

L2 = """
def mixed(ctx):
    value, qty = ctx.dep("value"), ctx.dep("qty")
    # keys unsorted, a negative zero, a nested list: readers get canonical JSON
    return {"z": value, "a": [qty, -0.0], "m": {"y": 1, "b": qty % 3 == 0}}

def gold_mixed(ctx):
    return [ctx.dep("mixed")["z"], ctx.user["portfolio"]["tier"]] if ctx.user["portfolio"] else None

def broken(ctx):
    raise ValueError("always")

def one_bad(ctx):
    if ctx.user.id == "u007":
        raise ValueError("only u007")
    if ctx.user.id == "u008":
        return None
    return -0.0 if ctx.dep("qty") % 2 else float(ctx.dep("qty"))
"""

L3 = """
import math

def keys(ctx):
    mixed = ctx.dep("mixed")
    # what a dependent sees: key order, list (not tuple), the sign of a zero
    return [list(mixed), type(mixed["a"]).__name__, math.copysign(1.0, mixed["a"][1]), mixed["m"]]

def broken_child(ctx):
    return ctx.dep("broken")

def one_bad_child(ctx):
    value = ctx.dep("one_bad")
    return None if value is None else [value, math.copysign(1.0, value), ctx.dep("keys")[0]]

def running(ctx):
    return (ctx.previous or 0) + ctx.dep("mixed")["a"][0]

def trend(ctx):
    before = ctx.dep("mixed", days_ago=1)
    return ctx.dep("mixed")["a"][0] - (before["a"][0] if before else 0)
"""

AGG = """
def summary(ctx):
    return {
        "keys": sorted(ctx.dep("keys")),
        "bad": sorted(ctx.dep("one_bad_child")),
        "gold": sorted(ctx.dep("gold_mixed")),
    }
"""


def write_extra(root: Path, day: date) -> None:
    """Tiers on the portfolio (for the segment) and the optional bonus source on odd days."""
    portfolio = root / "data" / "portfolio" / f"{day.isoformat()}.jsonl"
    lines = []
    for line in portfolio.read_text().splitlines():
        row = json.loads(line)
        row["record"]["tier"] = "gold" if row["user"] in GOLD else "basic"
        lines.append(json.dumps(row))
    portfolio.write_text("\n".join(lines) + "\n")
    if day.day % 2:
        bonus = root / "data" / "bonus" / f"{day.isoformat()}.jsonl"
        bonus.parent.mkdir(parents=True, exist_ok=True)
        bonus.write_text(
            "".join(
                json.dumps({"user": u, "record": {"extra": n}}) + "\n"
                for n, u in enumerate(USERS[::2])
            )
        )


def twin(root: Path) -> Workspace:
    ws = make_workspace(root)
    text = (ws.root / "BUILD.toml").read_text()
    ws.write(
        "BUILD.toml",
        text.replace('portfolio = "user"\n', 'portfolio = "user"\nbonus = "user"\n') + SEGMENT,
    )
    ws.write("calculations/fz/BUILD.toml", BUILD)
    ws.write("calculations/fz/l1.py", L1)
    ws.write("calculations/fz/l2.py", L2)
    ws.write("calculations/fz/l3.py", L3)
    ws.write("calculations/fz/agg.py", AGG)
    for offset in range(5):
        write_extra(root, date(2024, 1, 1) + timedelta(days=offset))
    return ws


def state(ws: Workspace, report: dict[str, Any]) -> dict[str, Any]:
    """Everything a build decides and stores, comparable across the twins."""
    backend = ws.backend()
    cells = sorted(
        (c["label"], c["date"], c["status"], c["reason"], c.get("items")) for c in report["cells"]
    )
    records = {}
    values = {}
    for label, day, *_ in cells:
        name = label.rpartition(":")[2]
        record = backend.get_cell(name, day)
        if record is None:
            continue
        records[(name, day)] = (
            record.status,
            record.composite_hash,
            record.result_hash,
            record.item_count,
            record.attempts,
            record.attempt_key,
            sorted(record.dep_results.items()),
        )
        if record.result_hash is not None:
            values[(name, day)] = backend.read_result(name, day)
    return {"cells": cells, "records": records, "values": values}


@pytest.fixture
def twins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Workspace, Workspace, list]:
    reads: list[tuple[str, str]] = []
    original = storage_base.Backend.iter_result_lines

    def counted(self, target, day, *more):  # type: ignore[no-untyped-def]
        reads.append((target, day))
        return original(self, target, day, *more)  # (result hash, part: iter_result passes both)

    monkeypatch.setattr(storage_base.Backend, "iter_result_lines", counted)
    return twin(tmp_path / "fused"), twin(tmp_path / "plain"), reads


def build_both(fused: Workspace, plain: Workspace, monkeypatch, reads, *argv: str, date: str):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("BTBUILD_FUSE", "0")
    reads.clear()
    expected = plain.build(*argv, date=date, expect=None)
    plain_reads = list(reads)
    monkeypatch.setenv("BTBUILD_FUSE", "1")
    reads.clear()
    got = fused.build(*argv, date=date, expect=None)
    return state(plain, expected), state(fused, got), plain_reads, list(reads)


def test_fused_builds_equal_unfused_builds(twins, monkeypatch):
    fused, plain, reads = twins
    # cold, then new dates on top, then a first-layer code change, then a failure fixed
    want, got, plain_reads, fused_reads = build_both(
        fused, plain, monkeypatch, reads, date="2024-01-03"
    )
    assert got == want
    statuses = {(label, status) for label, _d, status, _r, _i in want["cells"]}
    assert ("//fz:broken", "failed") in statuses  # the breaker trips...
    assert ("//fz:broken_child", "blocked") in statuses  # ...and its dependent waits
    assert ("//fz:one_bad", "ran") in statuses and ("//fz:keys", "ran") in statuses
    # really fused: the layer-2/3 streams of the plain build are not read back
    assert ("mixed", "2024-01-02") in plain_reads
    for name in ("qty", "one_bad"):
        assert (name, "2024-01-02") not in fused_reads, fused_reads
    assert len(fused_reads) < len(plain_reads)

    want, got, *_ = build_both(fused, plain, monkeypatch, reads, date="2024-01-05")
    assert got == want
    for ws in (fused, plain):
        ws.edit("calculations/fz/l1.py", "base + (", "base * 2 + (")
        ws.edit("calculations/fz/l2.py", 'raise ValueError("always")', "return 1")
    want, got, *_ = build_both(fused, plain, monkeypatch, reads, date="2024-01-05")
    assert got == want
    assert any(c[0] == "//fz:broken_child" and c[2] == "ran" for c in want["cells"])


def test_fused_build_in_worker_processes_equals_unfused(twins, monkeypatch):
    fused, plain, reads = twins
    want, got, *_ = build_both(fused, plain, monkeypatch, reads, "--jobs", "2", date="2024-01-02")
    assert got == want
