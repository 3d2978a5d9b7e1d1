"""User segments: process() runs only for the segment's users, checks count only them, and
the segment's definition is part of exactly its targets' declaration hash."""

from __future__ import annotations

import json
from datetime import date, timedelta

from btbuild.errors import ConfigError
from btbuild.workspace.config import load_workspace

USERS = [f"u{i:03d}" for i in range(1, 31)]
GOLD = set(USERS[::3])  # 10 of 30 users


def write_tiers(root, day: date) -> None:
    path = root / "data" / "portfolio" / f"{day.isoformat()}.jsonl"
    lines = [
        json.dumps(
            {
                "user": u,
                "record": {
                    "tier": "gold" if u in GOLD else "basic",
                    "flags": {"signed_in": n % 2 == 0},
                    "positions": [{"symbol": "AAA", "quantity": n + 1}],
                },
            }
        )
        for n, u in enumerate(USERS)
    ]
    path.write_text("\n".join(lines) + "\n")


SEGMENTS = """
[segment.gold]
source = "portfolio"
field = "tier"
values = ["gold"]

[segment.signed_in]
source = "portfolio"
field = "flags.signed_in"
values = [true]
"""

BUILD = """
[calculation.gold_value]
entry = "seg:gold_value"
roots = ["portfolio", "prices"]
users = "gold"

[calculation.signed_in_count]
entry = "seg:positions"
roots = ["portfolio"]
users = "signed_in"

[calculation.gold_total]
entry = "seg:total"
kind = "per_date"
deps = [":gold_value"]
"""

CODE = """
def gold_value(ctx):
    assert ctx.user["portfolio"]["tier"] == "gold", ctx.user.id   # never called for others
    n = int(ctx.user.id[1:])
    if n % 9 == 1:   # 4 of the 10 gold users: 40% None, below the 0.5 null density limit
        return None
    return ctx.user["portfolio"]["positions"][0]["quantity"] * ctx.root("prices")["AAA"]["close"]

def positions(ctx):
    return len(ctx.user["portfolio"]["positions"]) + int(ctx.user.id[1:])

def total(ctx):
    return {"users": sorted(ctx.dep("gold_value"))}
"""


def _setup(ws):
    ws.write("BUILD.toml", (ws.root / "BUILD.toml").read_text() + SEGMENTS)
    ws.write("calculations/seg/BUILD.toml", BUILD)
    ws.write("calculations/seg/seg.py", CODE)
    for offset in range(5):
        write_tiers(ws.root, date(2024, 1, 1) + timedelta(days=offset))


def test_process_runs_only_for_segment_users_and_checks_count_only_them(ws):
    _setup(ws)
    report = ws.build("//seg:*")
    cells = ws.cells(report)
    assert cells[("//seg:gold_value", "2024-01-03")] == ("ran", "new"), report
    assert cells[("//seg:signed_in_count", "2024-01-03")][0] == "ran"
    backend = ws.backend()
    gold = backend.read_result("gold_value", "2024-01-03")
    # only gold users got a call; None results (4 of 10: 40%) are not stored and pass the
    # null density check, which would fail over all 30 users (24 of 30 without a value)
    assert set(gold) == {u for u in GOLD if int(u[1:]) % 9 != 1}
    signed = backend.read_result("signed_in_count", "2024-01-03")
    assert set(signed) == set(USERS[::2])
    total = backend.read_result("gold_total", "2024-01-03")
    assert total == {"users": sorted(gold)}


def test_a_segment_change_reruns_exactly_its_targets(ws):
    _setup(ws)
    ws.build("//...")
    assert all(c["status"] == "skipped" for c in ws.build("//...")["cells"])
    ws.edit("BUILD.toml", 'values = ["gold"]', 'values = ["gold", "silver"]')
    report = ws.build("//...")
    ran = {c["label"] for c in report["cells"] if c["status"] == "ran"}
    assert ran == {"//seg:gold_value"}  # the same users: gold_total is cut off early
    cells = ws.cells(report)
    assert cells[("//seg:gold_total", "2024-01-03")] == ("skipped", "early_cutoff")
    assert cells[("//seg:signed_in_count", "2024-01-03")] == ("skipped", "up_to_date")


def test_segment_definition_change_alone_changes_only_its_targets_declaration(ws):
    _setup(ws)
    ws.build("//...")
    ws.edit("BUILD.toml", "values = [true]", "values = [false]")
    report = ws.build("//...")
    ran = {c["label"] for c in report["cells"] if c["status"] == "ran"}
    assert ran == {"//seg:signed_in_count"}
    reasons = {c["reason"] for c in report["cells"] if c["status"] == "ran"}
    assert reasons == {"code_changed"}  # the declaration component changed
    signed = ws.backend().read_result("signed_in_count", "2024-01-03")
    assert set(signed) == set(USERS[1::2])


def test_segment_errors_name_the_target_and_file(ws):
    _setup(ws)
    ws.edit("calculations/seg/BUILD.toml", 'users = "gold"', 'users = "platinum"')
    try:
        load_workspace(ws.root)
    except ConfigError as exc:
        assert (
            "//seg:gold_value: users = 'platinum' is not a segment (known: gold, signed_in)"
            in str(exc)
        )
        assert "calculations/seg/BUILD.toml" in str(exc)
    else:
        raise AssertionError("an unknown segment must be an error")
    ws.edit("calculations/seg/BUILD.toml", 'users = "platinum"', 'users = "gold"')
    ws.edit(
        "calculations/seg/BUILD.toml",
        'roots = ["portfolio", "prices"]\nusers',
        'roots = ["prices"]\nusers',
    )
    code, _, err = ws.cli("build", "//...", "--date", "2024-01-03")
    assert code == 2 and "segment 'gold' is defined on source 'portfolio': add it to roots" in err


def big_holders(ws, rule: str = "record['positions'][0]['quantity'] > 20") -> None:
    """//seg:signed_in_count on segment 'big': the users ``rule`` (a plugin predicate of the
    workspace file plugins/seg.py) accepts."""
    _setup(ws)
    ws.edit(
        "BUILD.toml",
        'plugins = ["btbuild.plugins.jsonl"]',
        'plugins = ["btbuild.plugins.jsonl", "plugins.seg"]',
    )
    ws.write(
        "plugins/seg.py",
        "def btbuild_segment_predicates():\n"
        f"    return {{'big_holder': lambda record: record is not None and {rule}}}\n",
    )
    ws.write(
        "BUILD.toml",
        (ws.root / "BUILD.toml").read_text()
        + '\n[segment.big]\nsource = "portfolio"\npredicate = "big_holder"\n',
    )
    ws.edit("calculations/seg/BUILD.toml", 'users = "signed_in"', 'users = "big"')


def test_plugin_predicate_segment(ws):
    big_holders(ws)
    ws.build("//seg:signed_in_count")
    result = ws.backend().read_result("signed_in_count", "2024-01-03")
    assert set(result) == set(USERS[20:])  # quantity = position in the file + 1
    ws.edit("BUILD.toml", 'predicate = "big_holder"', 'predicate = "nobody"')
    code, _, err = ws.cli("build", "//seg:signed_in_count", "--date", "2024-01-03")
    assert code == 2 and "no plugin provides predicate 'nobody'" in err
