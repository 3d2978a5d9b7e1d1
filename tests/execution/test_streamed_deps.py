"""A per_date calculation with ``stream_deps = true`` reads its per_user deps shard by shard
(btbuild/storage/streamed.py): what it returns is what it would return from the whole dict,
and a read failure fails the cell even when the calculation swallows the exception. Without
the key, ``ctx.dep`` is the plain dict it always was (code testing ``isinstance(x, dict)`` or
handing it to a library keeps its behaviour), and the simulation hands over the same type as
the build in both cases."""

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


def streaming(ws: Workspace) -> None:
    ws.edit(
        "calculations/pricing/BUILD.toml",
        'deps = [":value"]\n',
        'deps = [":value"]\nstream_deps = true\n',
    )


def test_a_read_failure_the_calculation_swallows_still_fails_the_cell(ws: Workspace) -> None:
    streaming(ws)
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
    streaming(ws)
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


TYPE_OF = """\
def total(ctx):
    values = ctx.dep("value")
    return {"dict": isinstance(values, dict), "users": len(values)}
"""


def test_without_stream_deps_a_per_user_dep_is_a_dict_and_the_key_re_runs(ws: Workspace) -> None:
    ws.write("calculations/pricing/totals.py", TYPE_OF)
    ws.build("//pricing:total", date="2024-01-01")
    with ws.backend() as backend:
        assert backend.read_expected("total", "2024-01-01") == {"dict": True, "users": 30}
    streaming(ws)  # in the declaration hash: the type ctx.dep returns is part of the input
    cells = ws.cells(ws.build("//pricing:total", date="2024-01-01"))
    assert cells[("//pricing:total", "2024-01-01")][0] == "ran"
    with ws.backend() as backend:
        assert backend.read_expected("total", "2024-01-01") == {"dict": False, "users": 30}


def test_the_simulation_hands_a_stream_deps_calculation_what_the_build_does(ws: Workspace) -> None:
    from btbuild.storage.streamed import StreamedResult, held_deps
    from btbuild.workspace.config import load_workspace

    streaming(ws)
    workspace = load_workspace(ws.root)
    by_label = workspace.by_label()
    total = by_label["//pricing:total"]
    held = held_deps(total, by_label, {"value": {"u2": 2.0, "u1": 1.0}})["value"]
    assert isinstance(held, StreamedResult) and not isinstance(held, dict)
    assert list(held) == ["u1", "u2"] and held == {"u1": 1.0, "u2": 2.0} and len(held) == 2
    held["u3"] = 3.0  # a write works on the calculation's own copy, as in a build
    assert dict(held) == {"u1": 1.0, "u2": 2.0, "u3": 3.0}
    plain = {"value": {"u1": 1.0}}
    sign = by_label["//pricing:sign"]
    assert held_deps(sign, by_label, plain) is plain
