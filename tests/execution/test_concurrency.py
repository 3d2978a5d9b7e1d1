"""Two builders on one cache, deterministically interleaved in one process (issue 12).

The real-process stress tests are in test_stress.py (slow); here each race is staged step by
step: one builder reads its plan, another commits meanwhile, then the first one runs.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from btbuild.execution.build import BuildRequest, Scheduler
from btbuild.session import Session

V, T, S = "//pricing:value", "//pricing:total", "//pricing:sign"
DAY = "2024-01-02"


def scheduler(ws, *patterns: str, end: str = DAY, **options) -> Scheduler:
    request = BuildRequest(patterns=patterns or ("//...",), end=date.fromisoformat(end), **options)
    return Scheduler(Session(ws.root), request, **options.pop("hooks", {}))


def rerun_needed(ws, end: str = DAY) -> list[tuple[str, str, str]]:
    """Cells a fresh dry run would run: what ``btbuild status`` shows as not up to date."""
    report = ws.build("--dry-run", date=end)
    return [
        (c["label"], c["date"], c["reason"]) for c in report["cells"] if c["status"] == "runnable"
    ]


def change_root_target(ws) -> None:
    ws.edit("calculations/pricing/calcs.py", "return sum(", "return 2 * sum(")


def test_a_root_target_committed_by_another_builder_after_the_plan_is_read(ws):
    """The race of issue 12: builder A reads its plan (cell summaries) for //..., builder B
    then builds the changed root target alone, then A runs. A must decide the root cell from
    the record it reads (B's new result), so its dependents re-run on the new upstream."""
    ws.build(date=DAY)
    change_root_target(ws)
    first = scheduler(ws, "//...").plan()  # the summaries are read here: the old result of value
    assert ws.cells(ws.build("//pricing:value", date=DAY))[(V, DAY)] == ("ran", "code_changed")
    report = first.run()
    first.backend.close()
    cells = {(c.label, c.date.isoformat()): (c.status, c.reason) for c in report.cells}
    assert cells[(V, DAY)][0] == "skipped"
    assert cells[(T, DAY)] == ("ran", "deps_changed")
    assert rerun_needed(ws) == []
    backend = ws.backend()
    value = backend.get_cell("value", DAY)
    assert backend.get_cell("total", DAY).dep_results[V] == value.result_hash


def test_a_dep_that_moves_before_the_commit_re_plans_the_dependent(ws, monkeypatch):
    """Compare-and-set at commit: while this build computes total, another builder (with
    other code) commits another value. total's commit is refused, and the build plans again
    from the cache as it is: value is current for this code again, then total and sign."""
    from btbuild.execution import finish

    ws.build(date=DAY)
    change_root_target(ws)
    dep_cells = finish.dep_cells
    interfered = []

    def interfere(env, cell):
        if cell.name == "total" and cell.day.isoformat() == DAY and not interfered:
            lease = env.backend.acquire("value", DAY, "other-builder", 60)
            writer = env.backend.open_writer(lease, "per_user")
            writer.add({"u001": -1.0})
            other = dict(lease.previous.components, code="other-code")
            interfered.append(
                writer.commit(composite_hash="other-key", components=other, category="pricing")
            )
        return dep_cells(env, cell)

    monkeypatch.setattr(finish, "dep_cells", interfere)
    notices: list[str] = []
    build = Scheduler(
        Session(ws.root),
        BuildRequest(patterns=("//...",), end=date.fromisoformat(DAY)),
        on_wait=notices.append,
    )
    report = build.run()
    build.backend.close()
    cells = {(c.label, c.date.isoformat()): (c.status, c.reason) for c in report.cells}
    assert interfered and report.ok, cells
    assert cells[(V, DAY)] == ("ran", "code_changed")  # round 2 rebuilt what the other changed
    assert cells[(T, DAY)][0] == "ran" and cells[(S, DAY)][0] in ("ran", "skipped")
    assert any("planning them again" in line for line in notices)
    assert rerun_needed(ws) == []
    backend = ws.backend()
    assert (
        backend.get_cell("total", DAY).dep_results[V] == backend.get_cell("value", DAY).result_hash
    )
    assert backend.read_result("value", DAY)["u001"] != -1.0


def _lease_for_a_live_process(ws, name: str = "value"):
    import subprocess
    import sys

    from btbuild.execution.liveness import owner_id

    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    backend = ws.backend()
    lease = backend.acquire(name, DAY, owner_id(holder.pid), 900)
    assert lease is not None
    backend.close()
    return holder


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_cell_leased_by_a_live_builder_is_waited_for(ws, jobs):
    """Another live builder holds value: this build says it waits, and once that builder is
    gone (killed: its lease is dead at once) it builds the cell and everything after it."""
    ws.build(date="2024-01-01")
    change_root_target(ws)
    holder = _lease_for_a_live_process(ws)
    notices: list[str] = []

    def on_wait(line: str) -> None:
        notices.append(line)
        holder.kill()  # the other builder dies while this one waits

    try:
        build = Scheduler(
            Session(ws.root),
            BuildRequest(patterns=("//...",), end=date.fromisoformat(DAY), jobs=jobs),
            on_wait=on_wait,
        )
        report = build.run()
        build.backend.close()
    finally:
        holder.kill()
        holder.wait()
    cells = {(c.label, c.date.isoformat()): (c.status, c.reason) for c in report.cells}
    assert report.ok, cells
    assert cells[(V, DAY)] == ("ran", "new") and cells[(T, DAY)] == ("ran", "new")
    assert len(notices) == 1 and "waiting for another builder: //pricing:value on" in notices[0]
    assert rerun_needed(ws) == []


def test_no_wait_reports_cells_another_builder_holds_and_exits_1(ws):
    holder = _lease_for_a_live_process(ws)
    try:
        report = ws.build("--no-wait", date=DAY, expect=1)
    finally:
        holder.kill()
        holder.wait()
    cells = ws.cells(report)
    assert cells[(V, DAY)] == ("blocked", "leased")
    assert cells[(T, DAY)] == ("blocked", "waiting_for_deps")
    assert cells[(V, "2024-01-01")] == ("ran", "new")


def test_a_waiting_builder_reports_what_the_other_builder_committed(ws):
    """The other builder finishes the cell: this one reports it skipped (up to date) and its
    dependents read the result the other builder committed."""
    ws.build(date=DAY)
    change_root_target(ws)
    holder = _lease_for_a_live_process(ws)
    other: dict = {}

    def other_builder_finishes(line: str) -> None:
        backend = ws.backend()  # hand the lease back, then build the cell for real
        record = backend.get_cell("value", DAY)
        backend.put_cells([replace(record, status="committed", lease_owner=None)])
        backend.close()
        holder.kill()
        other["code"] = ws.cli("build", "//pricing:value", "--date", DAY)[0]

    try:
        build = Scheduler(
            Session(ws.root),
            BuildRequest(patterns=("//...",), end=date.fromisoformat(DAY)),
            on_wait=other_builder_finishes,
        )
        report = build.run()
        build.backend.close()
    finally:
        holder.kill()
        holder.wait()
    cells = {(c.label, c.date.isoformat()): (c.status, c.reason) for c in report.cells}
    assert other["code"] == 0 and report.ok
    assert cells[(V, DAY)] == ("skipped", "up_to_date")
    assert cells[(T, DAY)] == ("ran", "deps_changed")
    assert rerun_needed(ws) == []


def test_a_group_keeps_waiting_for_cells_still_leased_after_others_were_settled(ws):
    """Two cells of one group are held by two other builders. The first ends by committing
    its cell (this build settles it as skipped); the second is still running then, and this
    build must keep waiting for it, not move on and leave it unreported (--jobs 1)."""
    import threading

    ws.build(date=DAY)
    change_root_target(ws)
    ws.write(
        "calculations/pricing/levels.py",
        'def level(ctx):\n    return sorted((v["close"] for v in ctx.root("prices").values()), reverse=True)\n',
    )
    first = _lease_for_a_live_process(ws, "value")
    second = _lease_for_a_live_process(ws, "price_level")
    killer = threading.Timer(1.5, second.kill)

    def others(line: str) -> None:
        backend = ws.backend()  # the first other builder finishes value
        record = backend.get_cell("value", DAY)
        backend.put_cells([replace(record, status="committed", lease_owner=None)])
        backend.close()
        first.kill()
        assert ws.cli("build", "//pricing:value", "--date", DAY)[0] == 0
        killer.start()  # the second one dies a little later

    try:
        build = Scheduler(
            Session(ws.root),
            BuildRequest(patterns=("//...",), end=date.fromisoformat(DAY)),
            on_wait=others,
        )
        report = build.run()
        build.backend.close()
    finally:
        killer.cancel()
        for holder in (first, second):
            holder.kill()
            holder.wait()
    cells = {(c.label, c.date.isoformat()): (c.status, c.reason) for c in report.cells}
    assert report.ok, cells
    assert cells[(V, DAY)] == ("skipped", "up_to_date")
    assert cells[("//pricing:price_level", DAY)] == ("ran", "code_changed")
    assert len(report.cells) == 8 and rerun_needed(ws) == []


def cosmetic_root_edit(ws) -> None:
    ws.edit("calculations/pricing/calcs.py", "return sum(", "return 0 + sum(")


def test_a_cosmetic_edit_is_proven_and_adopted(ws):
    """The premise of the race below: the edit alone is skipped as cosmetic."""
    ws.build(date=DAY)
    cosmetic_root_edit(ws)
    assert ws.cells(ws.build(date=DAY))[(V, DAY)] == ("skipped", "cosmetic")
    assert rerun_needed(ws) == []


@pytest.mark.parametrize("moves", [1, 5])
def test_a_cosmetic_adoption_never_lands_on_another_builders_newer_result(ws, monkeypatch, moves):
    """Between this build's read of a cell and its adoption of the new code hashes (the
    cosmetic skip), another builder commits another result there. Adopting anyway would pair
    this code's input key with a result it never produced: a stale cell that looks up to date.
    The adoption is a compare-and-set: it fails, the cell is read and decided again (here: the
    other builder's code cannot be proven equivalent, so it re-runs). When the cell keeps
    moving (``moves`` = 5, more than the build re-reads), it re-runs without a verdict."""
    from btbuild.storage.base import Backend

    ws.build(date=DAY)
    cosmetic_root_edit(ws)
    original = Backend.put_cell_status
    interfered: list[str] = []

    def interfere(self, target, day, status, **changes):
        if (target, day, status) == ("value", DAY, "committed") and len(interfered) < moves:
            lease = self.acquire("value", DAY, "other-builder", 60)
            writer = self.open_writer(lease, "per_user")
            writer.add({"u001": -1.0 - len(interfered)})
            code = f"other-code-{len(interfered)}"
            record = writer.commit(
                composite_hash=f"other-key-{len(interfered)}",
                components=dict(lease.previous.components, code=code),
                code_hash=code,
                sim_hash=None,
                category="pricing",
            )
            interfered.append(record.generation)
        return original(self, target, day, status, **changes)

    monkeypatch.setattr(Backend, "put_cell_status", interfere)
    cells = ws.cells(ws.build(date=DAY))
    monkeypatch.undo()
    assert interfered
    assert cells[(V, DAY)][0] == "ran", cells[
        (V, DAY)
    ]  # decided again: the other code is not provable
    assert rerun_needed(ws) == []
    backend = ws.backend()
    assert backend.read_result("value", DAY)["u001"] >= 0  # this code's result, not the other's
    assert (
        backend.get_cell("total", DAY).dep_results[V] == backend.get_cell("value", DAY).result_hash
    )


def test_a_dead_builders_attempt_on_a_cell_found_up_to_date_is_ended(ws):
    """A builder killed mid-attempt leaves its cell ``running`` over the committed result.
    When the next build finds the cell up to date (nothing runs), it ends that dead attempt:
    the cell shows its committed result again. A live holder's lease is left alone."""
    import subprocess
    import sys

    from btbuild.execution.liveness import owner_id

    ws.build(date=DAY)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead_owner = owner_id(dead.pid)  # (taken while it runs: its start time is known)
    dead.wait()
    live = _lease_for_a_live_process(ws, "sign")
    try:
        backend = ws.backend()
        before = backend.get_cell("total", DAY)
        assert backend.acquire("total", DAY, dead_owner, 900) is not None
        backend.close()
        cells = ws.cells(ws.build(date=DAY))
        assert {status for status, _reason in cells.values()} == {"skipped"}
        backend = ws.backend()
        after = backend.get_cell("total", DAY)
        assert after.status == "committed" and after.lease_owner is None
        assert (after.generation, after.result_hash) == (before.generation, before.result_hash)
        assert backend.get_cell("sign", DAY).status == "running"  # its holder is alive
        backend.close()
    finally:
        live.kill()
        live.wait()
