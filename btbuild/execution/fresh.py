"""Module-level state left by earlier work: checked against a fresh import, never trusted.

A calculation module and its helpers are imported once per process and reused for many
cells and users. Code that keeps state there may be harmless - a memo cache filled on first
use (``_RATES[symbol] = ...``), a lazily loaded table - or make results depend on what the
process computed before (``_HISTORY.append(...)``, a counter on a class). The loader notices a
change of that state (btbuild/execution/module_state.py); what a change means is decided
here, by the one test that tells the two apart: computing the same thing again on a fresh
import of the modules.

* Between cells: a cell that finds its modules' state changed since the first cell this
  process committed for the target is not committed. It is given back and run again at once
  on a fresh import (as the first cell of a fresh process would run it), and that result is
  committed. A memo cache costs a second run of such cells; a calculation keeping history
  stores what it computes from a clean start, whatever ran before.
* Between users of a per_user cell (the users whose inputs are checked, btbuild/execution/
  isolation.py): a user whose call changed the state is computed again on a fresh import;
  the same value, and the pass goes on; another value fails the cell, naming the file and the
  name (its results would depend on which users came before it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from btbuild.execution.guard import raised_by_calc
from btbuild.execution.tasks import CellOutcome, GroupTask
from btbuild.storage.canonical import canonical_bytes

if TYPE_CHECKING:
    from btbuild.execution.attempt import Attempt, CellRun
    from btbuild.execution.environment import Environment


def run_fresh(env: Environment, group: GroupTask, run: Attempt) -> CellOutcome:
    """Give the attempt back and run its cell again on a fresh import of its modules."""
    from btbuild.execution.start import start

    env.heartbeat.drop(run.lease)
    env.backend.release(run.lease)  # drops the shards written under the lease
    env.loader.renew(run.target)
    again = start(env, group, run.task, run.target)
    if isinstance(again, CellOutcome):
        return again
    if run.target.kind == "per_user":
        from btbuild.execution.per_user import run_per_user

        return run_per_user(env, group, [again])[0]
    from btbuild.execution.runner import run_per_date

    return run_per_date(env, group, again)


def same_on_fresh_import(env: Environment, run: CellRun, point_again: Any, value: Any) -> bool:
    """Whether the calculation, imported afresh, computes ``value`` again for the user the
    run's ctx was pointed at (``point_again()`` points it there again, over fresh copies of
    the user's inputs)."""
    process = env.loader.fresh_factory(run.target)()
    point_again()
    try:
        again = process(run.ctx)
    except BaseException as exc:
        if not raised_by_calc(exc):
            raise
        return False
    try:
        return canonical_bytes(again) == canonical_bytes(value)
    except Exception:  # noqa: BLE001 - a value the writer refused (it failed the user already)
        return False
