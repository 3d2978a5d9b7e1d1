"""A per_date calculation reads its per_user deps shard by shard (btbuild/storage/streamed.py):
what it returns is what it would return from the whole dict, and a read failure fails the
cell even when the calculation swallows the exception."""

from __future__ import annotations

from tests.execution.conftest import Workspace

SWALLOWS = """\
import sqlite3

def total(ctx):
    values = ctx.dep("value")
    with sqlite3.connect({db!r}) as conn:  # hostile: damages its own input, then hides it
        conn.execute("DELETE FROM shards WHERE target = 'value'")
    try:
        found = round(sum(values.values()), 6)
    except Exception:
        found = -1.0
    return {{"users": len(values), "total": found}}
"""

RETURNS_IT = """\
def total(ctx):
    values = ctx.dep("value")
    assert not isinstance(values, dict) and len(values) == 30 and "u001" in values
    return {"all": values, "twice": [values, dict(values)], "sum": round(sum(values.values()), 6)}
"""


def test_a_read_failure_the_calculation_swallows_still_fails_the_cell(ws: Workspace) -> None:
    ws.build("//pricing:value", date="2024-01-01")
    ws.write(
        "calculations/pricing/totals.py", SWALLOWS.format(db=str(ws.root / ".btbuild" / "cache.db"))
    )
    report = ws.build("//pricing:total", date="2024-01-01", expect=1)
    cell = {c["label"]: c for c in report["cells"]}["//pricing:total"]
    assert cell["status"] == "failed" and "an input is damaged" in cell["detail"], cell
    assert "value on 2024-01-01 cannot be read: shard 0 of 1 is missing" in cell["detail"]
    with ws.backend() as backend:
        assert backend.get_cell("total", "2024-01-01") is None  # given back: nothing committed
        assert backend.get_cell("value", "2024-01-01") is None  # forgotten: rebuilt next build


def test_a_returned_dep_is_written_as_the_dict_it_stands_for(ws: Workspace) -> None:
    ws.write("calculations/pricing/totals.py", RETURNS_IT)
    ws.build("//pricing:total", date="2024-01-01")
    with ws.backend() as backend:
        values = backend.read_expected("value", "2024-01-01")
        stored = backend.read_expected("total", "2024-01-01")
    assert stored == {
        "all": values,
        "twice": [values, values],
        "sum": round(sum(values.values()), 6),
    }
