"""End to end: a real build registers SimHashes; a cosmetic refactor is skipped, a bug re-runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from sim_helpers import VALUE, write_workspace

from btbuild.session import Session

COSMETIC = """\
def worth_of(line, quotes):
    bar = quotes.get(line["symbol"])
    if bar is None:
        return 0.0
    return bar["close"] * line["quantity"]


def value(ctx):
    book = ctx.user["portfolio"]
    quotes = ctx.root("prices")
    invested = sum([worth_of(line, quotes) for line in book["positions"]])
    return {"worth": book["cash"] + invested, "invested": invested}
"""

BUG = VALUE.replace('invested + book["cash"]', 'invested + max(book["cash"], 1.0)')


def statuses(report: dict) -> dict[str, set[tuple[str, str]]]:
    found: dict[str, set[tuple[str, str]]] = {}
    for cell in report["cells"]:
        found.setdefault(cell["label"], set()).add((cell["status"], cell["reason"]))
    return found


def test_cosmetic_refactor_is_skipped_and_a_bug_reruns(workspace: Path, run_cli) -> None:
    ws = ["--workspace", str(workspace)]
    code, first = run_cli(*ws, "build", "//...", "--date", "2024-01-04", "--format", "json")
    assert code == 0, first
    assert statuses(first)["//book:value"] == {("ran", "new")}

    value_file = workspace / "calculations" / "book" / "value.py"
    value_file.write_text(COSMETIC)
    code, second = run_cli(*ws, "build", "//...", "--date", "2024-01-04", "--format", "json")
    assert code == 0, second
    assert statuses(second)["//book:value"] == {("skipped", "cosmetic")}
    assert statuses(second)["//book:total"] == {("skipped", "up_to_date")}
    session = Session(workspace)
    try:
        ledger = session.backend.equivalences("value")
        assert len(ledger) == 3  # one per date
        assert {entry.new_code_hash for entry in ledger} != {
            entry.old_code_hash for entry in ledger
        }
    finally:
        session.close()

    # a second cosmetic edit on top of the first is proven too (the first one's SimHash was registered)
    value_file.write_text(COSMETIC.replace("worth_of", "line_worth"))
    code, third = run_cli(*ws, "build", "//...", "--date", "2024-01-04", "--format", "json")
    assert statuses(third)["//book:value"] == {("skipped", "cosmetic")}

    value_file.write_text(BUG)
    code, fourth = run_cli(*ws, "build", "//...", "--date", "2024-01-04", "--format", "json")
    assert code == 0, fourth
    assert statuses(fourth)["//book:value"] == {("ran", "code_changed")}


def test_dry_run_reports_cosmetic_without_registering(workspace: Path, run_cli) -> None:
    ws = ["--workspace", str(workspace)]
    assert run_cli(*ws, "build", "//...", "--date", "2024-01-03", "--format", "json")[0] == 0
    (workspace / "calculations" / "book" / "value.py").write_text(COSMETIC)
    code, report = run_cli(
        *ws, "build", "//...", "--date", "2024-01-03", "--dry-run", "--format", "json"
    )
    assert statuses(report)["//book:value"] == {("skipped", "cosmetic")}
    session = Session(workspace)
    try:
        assert session.backend.equivalences("value") == []
    finally:
        session.close()


def test_a_build_whose_simulations_are_registered_starts_no_child(
    workspace: Path, run_cli, monkeypatch
) -> None:
    """Cells of a new date run with the same code: their SimHashes are registered under the
    same keys already, so the build simulates nothing (and starts no simulation process)."""
    from btbuild.sim.isolated import IsolatedJudge

    started: list[str] = []
    child = IsolatedJudge._child

    def counted(self: IsolatedJudge, *role: str):  # type: ignore[no-untyped-def]
        started.append("child")
        return child(self, *role)

    monkeypatch.setattr(IsolatedJudge, "_child", counted)
    ws = ["--workspace", str(workspace)]
    code, first = run_cli(*ws, "build", "//...", "--date", "2024-01-03", "--format", "json")
    assert code == 0 and statuses(first)["//book:value"] == {("ran", "new")}
    assert started  # the first build simulated what ran
    started.clear()
    code, second = run_cli(*ws, "build", "//...", "--date", "2024-01-04", "--format", "json")
    assert code == 0 and ("ran", "new") in statuses(second)["//book:value"]
    assert started == []
    # ... and a cosmetic edit is still proven against the registered SimHash
    (workspace / "calculations" / "book" / "value.py").write_text(COSMETIC)
    code, third = run_cli(*ws, "build", "//...", "--date", "2024-01-04", "--format", "json")
    assert statuses(third)["//book:value"] == {("skipped", "cosmetic")}


def test_a_change_of_json_type_is_not_cosmetic(workspace: Path, run_cli) -> None:
    """Red team: an output that only changes type - an int where a float was (``"n": 3``
    against ``"n": 3.0``), a tuple where a list was - compared equal once canonicalized
    (``1 == 1.0``; tuples read as lists), so the change was skipped as cosmetic: the stored
    JSON stayed the old one (a clean build writes ``3.0``, and refuses the tuple)."""
    ws = ["--workspace", str(workspace)]
    value_file = workspace / "calculations" / "book" / "value.py"
    value_file.write_text(
        VALUE.replace('"worth": invested', '"n": len(book["positions"]), "worth": invested')
    )
    assert run_cli(*ws, "build", "//...", "--date", "2024-01-04", "--format", "json")[0] == 0
    value_file.write_text(
        VALUE.replace('"worth": invested', '"n": float(len(book["positions"])), "worth": invested')
    )
    code, report = run_cli(*ws, "build", "//...", "--date", "2024-01-04", "--format", "json")
    assert code == 0 and statuses(report)["//book:value"] == {("ran", "code_changed")}
    value_file.write_text(
        VALUE.replace('"worth": invested', '"n": [len(book["positions"])], "worth": invested')
    )
    assert run_cli(*ws, "build", "//...", "--date", "2024-01-04", "--format", "json")[0] == 0
    value_file.write_text(
        VALUE.replace('"worth": invested', '"n": (len(book["positions"]),), "worth": invested')
    )
    code, report = run_cli(*ws, "build", "//...", "--date", "2024-01-04", "--format", "json")
    assert code == 1 and statuses(report)["//book:value"] == {("failed", "code_changed")}


WORTH = """\
def worth(ctx):
    return ctx.user["portfolio"]["cash"]
"""


def _registered(workspace: Path) -> dict[str, str | None]:
    """Target name -> the SimHash registered under its current sim key (None: none)."""
    from btbuild.sim.optimizer import SimHashes

    session = Session(workspace)
    try:
        sims = SimHashes(session)
        return {
            name: session.backend.get_sim_hash(sims.sim_key(target), sims.version)
            for name, target in session.workspace.targets.items()
        }
    finally:
        session.close()


def test_a_jobs_build_simulates_ahead_and_registers_what_one_process_does(
    tmp_path: Path, run_cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``--jobs 2`` the SimHashes are simulated while the workers run (``ahead``) and
    registered after the build as one process registers them. Here the simulation of
    ``value`` kills its process (only on fabricated data), which breaks the simulation of
    ``worth`` queued behind it: that one is asked again, alone, and registered; ``value``'s
    (and ``total``'s, which runs ``value`` upstream) is not, as without ``--jobs``."""
    from btbuild.sim.isolated import IsolatedJudge

    seen: dict[str, object] = {}
    original = IsolatedJudge._simulated_ahead

    def recorded(self: IsolatedJudge, target):  # type: ignore[no-untyped-def]
        seen[target.name] = answer = original(self, target)
        return answer

    monkeypatch.setattr(IsolatedJudge, "_simulated_ahead", recorded)
    huge = '    import os\n    if abs(ctx.user["portfolio"]["cash"]) > 1e7:\n        os._exit(0)\n'
    workspace = write_workspace(
        tmp_path / "ws", value=VALUE.replace("def value(ctx):\n", "def value(ctx):\n" + huge)
    )
    book = workspace / "calculations" / "book"
    (book / "worth.py").write_text(WORTH)
    with (book / "BUILD.toml").open("a") as build_file:
        build_file.write('\n[calculation.worth]\nentry = "worth:worth"\nroots = ["portfolio"]\n')
    ws = ["--workspace", str(workspace), "build", "//...", "--date", "2024-01-02"]
    code, report = run_cli(*ws, "--jobs", "2", "--format", "json")
    assert code == 0, report
    assert set(seen) == {"value", "worth"}  # simulated ahead (total, the last, is asked)
    assert seen["worth"] is None  # its child died under value's simulation: asked again
    registry = _registered(workspace)
    assert registry["value"] is None and registry["total"] is None
    assert registry["worth"] is not None
