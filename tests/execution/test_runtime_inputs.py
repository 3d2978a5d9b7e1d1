"""Environment variables a calculation reads are inputs of its cells, end to end: a change
re-runs exactly the readers (``infra_changed``), and a worker whose environment differs from
the dispatcher's refuses the tasks instead of caching results under the dispatcher's keys."""

from __future__ import annotations

from datetime import date

READER = """\
import os


def value(ctx):
    prices = ctx.root("prices")
    rate = float(os.environ.get("BT_TEST_RATE", "1"))
    return rate * sum(p["quantity"] * prices[p["symbol"]]["close"] for p in ctx.user["portfolio"]["positions"])
"""


def test_editing_a_variable_the_code_reads_reruns_exactly_its_readers(ws, monkeypatch, tmp_path):
    """Red team: before, a changed ``BT_TEST_RATE`` re-ran nothing: every cell stayed up to
    date with results computed from the old value (exit 0)."""
    from tests.execution.conftest import make_workspace

    monkeypatch.delenv("BT_TEST_RATE", raising=False)
    ws.write("calculations/pricing/calcs.py", READER)
    ws.build("//pricing:value", "//pricing:price_level")
    monkeypatch.setenv("BT_TEST_RATE", "2")
    cells = ws.cells(ws.build("//pricing:value", "//pricing:price_level"))
    assert cells[("//pricing:value", "2024-01-03")] == ("ran", "infra_changed")
    assert cells[("//pricing:price_level", "2024-01-03")][0] == "skipped"
    clean = make_workspace(tmp_path / "clean")
    clean.write("calculations/pricing/calcs.py", READER)
    clean.build("//pricing:value")
    assert ws.backend().read_result("value", "2024-01-03") == clean.backend().read_result(
        "value", "2024-01-03"
    )
    monkeypatch.setenv("BT_TEST_RATE", "2")  # same value: nothing to do
    assert ws.build("//pricing:value")["summary"]["ran"] == 0


def test_a_worker_with_another_value_of_a_variable_refuses_the_task(ws, monkeypatch):
    """A Pub/Sub worker (or any process running cells) hashes with its own environment: with
    another value of a variable the code reads, its static hash differs from the planned one
    and it refuses the cell, naming what differs, before anything is written."""
    from btbuild.execution.build import BuildRequest, Scheduler
    from btbuild.execution.runner import Environment, run_group
    from btbuild.execution.setup import context_of
    from btbuild.execution.tasks import GroupTask
    from btbuild.session import Session

    ws.write("calculations/pricing/calcs.py", READER)
    monkeypatch.setenv("BT_TEST_RATE", "1")
    planner = Session(ws.root)
    scheduler = Scheduler(
        planner, BuildRequest(patterns=("//pricing:value",), end=date(2024, 1, 1))
    ).plan()
    target = scheduler.targets["//pricing:value"]
    _decision, task, _inputs = scheduler.planner.decide(target, date(2024, 1, 1))
    monkeypatch.setenv("BT_TEST_RATE", "3")  # the worker's environment
    worker = Session(ws.root)
    env = Environment.of(context_of(worker))
    (outcome,) = run_group(env, GroupTask(date(2024, 1, 1), 1, (task,), "r"))
    assert outcome.status == "failed" and "\n" not in outcome.error
    assert "this worker's infra (data files, packages or environment variables" in outcome.error
    assert worker.backend.get_cell("value", "2024-01-01") is None
    monkeypatch.setenv("BT_TEST_RATE", "1")
    same = Session(ws.root)
    (ok,) = run_group(
        Environment.of(context_of(same)), GroupTask(date(2024, 1, 1), 1, (task,), "r")
    )
    assert ok.status == "ran"
    for session in (planner, worker, same):
        session.close()


def test_a_docstring_the_code_parses_is_an_input(ws):
    """Red team: editing a docstring the code reads (``value.__doc__``) re-ran nothing."""
    ws.write(
        "calculations/pricing/levels.py",
        'def level(ctx):\n    """3"""\n    return int(level.__doc__) * len(ctx.root("prices"))\n',
    )
    first = ws.build("//pricing:price_level")
    assert first["summary"]["ran"] == 3
    ws.edit("calculations/pricing/levels.py", '"""3"""', '"""4"""')
    cells = ws.cells(ws.build("//pricing:price_level"))
    assert cells[("//pricing:price_level", "2024-01-03")] == ("ran", "infra_changed")
    result = ws.backend().read_result("price_level", "2024-01-03")
    assert result % 4 == 0


PATCHER = """\
import helpers

helpers.RATE = 2  # changes the shared helper module at import
helpers.SEEN.append("value")


def value(ctx):
    return helpers.RATE
"""
PATCHED_READER = """\
import helpers


def level(ctx):
    return {"rate": helpers.RATE, "seen": helpers.SEEN, "n": len(ctx.root("prices"))}
"""


def test_a_calculation_changing_a_helper_at_import_changes_no_other_calculation(ws, tmp_path):
    """Red team: ``helpers.RATE = 2`` at the top of one calculation's module changed what
    every calculation loaded after it in the same process computed: ``price_level`` built
    alone stored ``rate`` 1, built together with ``value`` 2, both exit 0; a rebuild kept
    whichever came first. Each calculation module now imports its own copies of the helpers."""
    from tests.execution.conftest import make_workspace

    def prepare(w):  # type: ignore[no-untyped-def]
        w.write("calculations/pricing/helpers.py", "RATE = 1\nSEEN = []\n")
        w.write("calculations/pricing/calcs.py", PATCHER)
        w.write("calculations/pricing/levels.py", PATCHED_READER)

    prepare(ws)
    ws.build("//pricing:price_level")
    assert ws.build()["summary"]["ran"] > 0
    clean = make_workspace(tmp_path / "clean")
    prepare(clean)
    clean.build()  # value is loaded first in this process
    expected = {"rate": 1, "seen": [], "n": 3}
    for w in (ws, clean):
        for day in ("2024-01-01", "2024-01-03"):
            assert w.backend().read_result("price_level", day) == expected
        assert set(w.backend().read_result("value", "2024-01-03").values()) == {2}


STATEFUL = """\
_HISTORY = []


def level(ctx, memo={}):
    memo.setdefault("first", ctx.date.isoformat())  # set once: lazy initialisation is fine
    _HISTORY.append(len(ctx.root("prices")))
    return sum(_HISTORY)
"""


def test_module_level_state_changed_between_cells_is_never_committed(ws):
    """Red team: a calculation accumulating module-level state (``_HISTORY.append``) stored
    3, 6, 9 for three dates built together and 3 for the third one built alone (exit 0 both):
    results depending on which cells the process computed before. The first cell of a target
    in a process sets the baseline; a later one finding another state is run again on a fresh
    import (btbuild/execution/fresh.py), so every cell stores what it computes from a clean
    start: 3, whatever ran before it, with --jobs 1 or 2."""
    ws.write("calculations/pricing/levels.py", STATEFUL)
    for jobs in ("1", "2"):
        report = ws.build("//pricing:price_level", "--force", "--jobs", jobs)
        assert {c["status"] for c in report["cells"]} == {"ran"}
        for day in ("2024-01-01", "2024-01-02", "2024-01-03"):
            assert ws.backend().read_result("price_level", day) == 3
    lazy = STATEFUL.replace('_HISTORY.append(len(ctx.root("prices")))', "_HISTORY[:] = [3]")
    ws.write("calculations/pricing/levels.py", lazy)  # same size each time: not a change
    assert ws.build("//pricing:price_level")["summary"]["ran"] == 3


USER_STATE = """\
class Value:
    seen = []  # a class attribute: one list for every instance, cell and user

    def process(self, ctx):
        Value.seen.append(ctx.user.id)
        return len(Value.seen)
"""


def test_module_level_state_changed_between_users_is_never_committed(ws):
    """Red team: a per_user calculation counting users in a class attribute stored 1..30 for a
    cell built in one pass; split into user shards or processes it stores other numbers."""
    ws.write("calculations/pricing/calcs.py", USER_STATE)
    ws.edit("calculations/pricing/BUILD.toml", 'entry = "calcs:value"', 'entry = "calcs:Value"')
    report = ws.build("//pricing:value", date="2024-01-01", expect=1)
    (cell,) = report["cells"]
    assert cell["status"] == "failed"
    assert "changed module-level state between users of a cell" in cell["detail"]
    assert "(calculations/pricing/calcs.py: Value)" in cell["detail"]
    assert ws.backend().read_result("value", "2024-01-01") is None


def test_a_calculation_changing_environment_variables_is_refused(ws):
    """Red team: ``os.environ["BT_TEST_RATE"] = "5"`` at the top of one calculation's module
    changed what the calculations loaded after it in the process read (their keys hashed the
    value before any code ran). The import is refused and the environment put back; a change
    while it runs fails the cells committed after it (they may have read it) and is put back
    after the group."""
    import os

    ws.write(
        "calculations/pricing/calcs.py", 'import os\n\nos.environ["BT_TEST_SET"] = "5"\n' + READER
    )
    report = ws.build("//pricing:value", date="2024-01-01", expect=1)
    (cell,) = report["cells"]
    assert cell["status"] == "failed"
    assert (
        "importing calculations/pricing/calcs.py changed environment variables (BT_TEST_SET)"
        in (cell["detail"])
    )
    assert "BT_TEST_SET" not in os.environ
    ws.write(
        "calculations/pricing/levels.py",
        'import os\n\n\ndef level(ctx):\n    os.environ["BT_TEST_DAY"] = str(ctx.date)\n    return 1\n',
    )
    report = ws.build("//pricing:price_level", expect=1)
    assert "BT_TEST_DAY" not in os.environ  # put back after each group
    for cell in report["cells"]:
        assert cell["status"] == "failed"
        assert "environment variables changed while its group ran (BT_TEST_DAY)" in cell["detail"]
