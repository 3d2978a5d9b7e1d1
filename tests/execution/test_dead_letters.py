"""Dead letters belong to their inputs; --retry-dead; --force forces the matched targets only."""

from __future__ import annotations

from tests.execution.conftest import Workspace

V, T, S, L = "//pricing:value", "//pricing:total", "//pricing:sign", "//pricing:price_level"
D = "2024-01-01"
BREAK = ("    values = ctx.dep", "    raise RuntimeError('boom')\n    values = ctx.dep")


def _dead(ws: Workspace) -> None:
    """total fails max_attempts (2) times with the same inputs: dead-lettered."""
    ws.build(date=D)
    ws.edit("calculations/pricing/totals.py", *BREAK)
    assert ws.cells(ws.build(date=D, expect=1))[(T, D)] == ("failed", "code_changed")
    assert ws.cells(ws.build(date=D, expect=1))[(T, D)][0] == "dead_letter"
    again = ws.cells(ws.build(date=D, expect=1))
    assert again[(T, D)] == ("dead_letter", "max_attempts")  # same inputs: stays dead
    assert again[(S, D)] == ("blocked", "waiting_for_deps")


def test_a_code_fix_makes_a_dead_letter_runnable_again(ws: Workspace) -> None:
    _dead(ws)
    ws.edit(
        "calculations/pricing/totals.py", "raise RuntimeError('boom')", "assert ctx.dep('value')"
    )
    status = ws.cells(ws.build("--dry-run", date=D))
    assert status[(T, D)] == ("runnable", "code_changed")
    fixed = ws.cells(ws.build(date=D))
    assert fixed[(T, D)] == ("ran", "code_changed")
    assert fixed[(S, D)] == ("skipped", "early_cutoff")  # the same total as before
    with ws.backend() as backend:
        record = backend.get_cell("total", D)
        assert record.status == "committed" and record.attempt_key is None


def test_a_changed_input_counts_its_own_attempts(ws: Workspace, day_writer) -> None:
    """A dead letter whose root data changed runs again, with a fresh set of attempts."""
    _dead(ws)
    from datetime import date

    day_writer(ws.root, date(2024, 1, 1), price_bump=1.0)
    changed = ws.cells(ws.build(date=D, expect=1))
    assert changed[(T, D)][0] == "failed"  # one attempt of the new inputs
    with ws.backend() as backend:
        assert backend.get_cell("total", D).attempts == 1
    assert ws.cells(ws.build(date=D, expect=1))[(T, D)][0] == "dead_letter"


def test_retry_dead_reruns_dead_letters_whose_inputs_did_not_change(ws: Workspace) -> None:
    _dead(ws)
    retried = ws.cells(ws.build("--retry-dead", date=D, expect=1))
    assert retried[(T, D)][0] == "dead_letter"  # one more attempt, failed again
    code, out, _err = ws.cli("status", "//...", "--date", D)
    assert code == 0 and "D" in out.splitlines()[4 + sorted([L, S, T, V]).index(T) - 1]
    # reverting the code: the committed result is the one of these inputs again
    ws.edit("calculations/pricing/totals.py", "    raise RuntimeError('boom')\n", "")
    assert ws.cells(ws.build(date=D))[(T, D)] == ("skipped", "up_to_date")


def test_force_forces_the_matched_targets_only_and_force_deps_their_deps(ws: Workspace) -> None:
    ws.build(date=D)
    forced = ws.cells(ws.build(T, "--force", date=D))
    assert forced[(T, D)] == ("ran", "forced")
    assert forced[(V, D)] == ("skipped", "up_to_date")
    everything = ws.cells(ws.build(T, "--force-deps", date=D))
    assert everything[(T, D)] == ("ran", "forced") and everything[(V, D)] == ("ran", "forced")
    assert ws.cells(ws.build(T, "--dry-run", "--force", date=D))[(V, D)] == (
        "skipped",
        "up_to_date",
    )
