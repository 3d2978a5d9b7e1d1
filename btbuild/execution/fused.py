"""Fused per-user streams: later layers of per_user targets ride along in one pass over users.

Unfused, a (date, pass) group runs its per_user cells over one merged user stream and
commits them; the next pass's cells then read those results back from the cache (decode,
merge) in their own stream. Fused, for one date, a per_user target of a later pass whose
per_user deps run in this group runs *in the same pass*: each user's dep values are handed
to it in memory as they are computed, and the roots are read once per user for all of them.

Scheduler side (:class:`~btbuild.execution.fusion.Fusion`, in fusion.py): when a group is decided, each later-pass per_user target
of that date is planned *provisionally* when its decision cannot depend on what its fused
deps produce: its cell has no record at all (``new``) or is forced. The planner decides it
as in a dry run, with :data:`~btbuild.execution.fused_task.FUSED` ("?") for the fused deps'
results; every other dep must be decided already. The scheduler's own pass for that target
then skips the cell (its outcome comes back with the group), unless it was deferred.

Worker side (:class:`FusedPass`, a :class:`~btbuild.execution.per_user.UserPass`): a fused
dep is read from a *slot* (a negative stream index) filled with the user's value right after
the dep computed it (cells run in pass order). A dependent sees exactly what it would read
from the cache: scalars as they are (``-0.0`` as ``0.0``), containers as their canonical
JSON parsed back (sorted keys, lists; one C-level decode, no cache, no zlib, no merge). Each
cell keeps its own lease, writer, shards, validators, breaker and failure count; at the end
cells are finished in pass order, a fused cell once its deps committed: its dep results and
input key are completed then (``CellInputs`` key, so it is the key an unfused build plans),
its commit compares-and-sets those dep cells as any commit does. A fused cell whose dep did
not commit (failed, breaker, lease lost, deps moved...) is given back as ``deferred``: no
attempt counted, nothing written; the scheduler decides it in its own pass like an unfused
build (blocked on a failed dep). Its own failure (breaker, a date source) is *held* until
its deps committed, then counted against its completed key - so attempts, dead letters and
statuses are the unfused build's. A stream that fails (a source, damage) defers every fused
cell of the group.

Not fused (each falls back to its own pass, unfused): historical targets (``ctx.previous``
needs the previous date's cell of the same pass), targets with ``dep_lookback``, targets
with a per_date dep decided in the same group, a dep that is not daily-aligned with the
cell's date, cells with a record (their decision - up to date, early cutoff, cosmetic -
needs their deps' result hashes), expired cells and cells reading them (revival), sharded
groups (``[execution] user_shards`` > 1), dry runs, and everything with ``BTBUILD_FUSE=0``
in the scheduler's environment (the unfused reference the tests compare with).
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import date
from typing import Any

from btbuild.analysis.cells import input_key
from btbuild.execution.attempt import RERUN_EQUAL_KEY, CellRun, release
from btbuild.execution.environment import Environment
from btbuild.execution.finish import abort_run
from btbuild.execution.fused_task import FUSED, HELD, deferred, is_provisional
from btbuild.execution.per_user import UserPass, finish, process_user
from btbuild.execution.tasks import CellOutcome, CellTask, GroupTask
from btbuild.storage.canonical import canonical_bytes, loads
from btbuild.storage.records import COMMITTED
from btbuild.vocabulary import Reason, Status

# --------------------------------------------------------------------------- worker side


def run_per_user(env: Environment, group: GroupTask, runs: list[CellRun]) -> list[CellOutcome]:
    """The group's per_user cells over one user stream, fused cells included."""
    if any(is_provisional(run.task) for run in runs):
        return FusedPass(env, group, runs).run()
    return UserPass(env, group, runs).run()


def started(cell: CellTask, outcome: CellOutcome) -> CellOutcome:
    """A cell that did not start: a fused one is decided again in its own pass."""
    return deferred(cell) if is_provisional(cell) else outcome


def handoff(value: Any) -> Any:
    """The value a dependent reads, as it would read it from the cache (canonical JSON)."""
    kind = type(value)
    if kind is float:
        return 0.0 if value == 0.0 else value  # -0.0 is stored as 0.0
    if kind is int or kind is str or kind is bool:
        return value
    return loads(canonical_bytes(value))  # sorted keys, lists, base types


class FusedPass(UserPass):
    """A :class:`UserPass` whose fused cells read their fused deps from in-memory slots."""

    def __init__(self, env: Environment, group: GroupTask, runs: list[CellRun]):
        self.slots: dict[str, int] = {}  # fused dep name -> slot (a negative stream index)
        self.held: dict[int, tuple[str, bool]] = {}  # id(run) -> its held abort
        produced: set[str] = set()
        for run in runs:  # in pass order: a dep before its dependents
            if is_provisional(run.task):
                wanted = self._fused_deps(env, run.task)
                if not wanted <= produced:  # its dep is not running here: its own pass
                    release(env, [run])
                    run.done = deferred(run.task)
                    continue
                run.hold = self._holder(run)
            produced.add(run.task.name)
        super().__init__(env, group, runs)
        self.producers = [
            (run, self.slots[run.task.name]) if run.task.name in self.slots else (run, None)
            for run in runs
        ]

    @staticmethod
    def _fused_deps(env: Environment, task: CellTask) -> set[str]:
        return {
            env.by_label[label].name for label, value in task.dep_results.items() if value == FUSED
        }

    def _holder(self, run: CellRun) -> Any:
        def hold(message: str, phases: bool) -> CellOutcome:
            self.held[id(run)] = (message, phases)
            return CellOutcome(run.task.name, run.task.day, HELD, run.task.reason)

        return hold

    def wire(self, run: CellRun) -> None:
        if not is_provisional(run.task):
            super().wire(run)
            return
        table_stream = self.table.stream

        def stream(kind: str, name: str, day: date, expected: str | None = None) -> int:
            if kind == "result" and expected == FUSED:
                return self.slots.setdefault(name, -1 - len(self.slots))
            return table_stream(kind, name, day, expected)

        self.table.stream = stream  # type: ignore[method-assign]  # this pass's table routes fused results to slots
        try:
            super().wire(run)
        finally:
            del self.table.stream

    def feed(self, user_id: str, values: dict[int, Any], seq: int = 0) -> None:
        env, group = self.env, self.group
        seq, taken = self.watch(values, seq)  # see UserPass.feed
        keys = values.keys()
        todays = self.todays(values)
        for run, slot in self.producers:
            if run.done is not None or keys.isdisjoint(run.universe):
                continue
            value = process_user(env, group, run, user_id, values, seq, todays[run.spec])
            if slot is not None and value is not None:
                values[slot] = handoff(value)
                if taken is not None:  # the dependents after it share the value handed off
                    taken.hand(slot, values[slot])
        self.verify(user_id, values, taken)

    def settle(self, exc: Exception) -> None:
        """A stream failed: every unfinished fused cell goes back to its own pass, the
        others settle as in an unfused pass."""
        waiting = [run for run in self.runs if run.done is None and is_provisional(run.task)]
        waiting += [run for run in self.runs if run.done is not None and run.done.status == HELD]
        release(self.env, waiting)
        for run in waiting:
            run.done = deferred(run.task)
        super().settle(exc)

    def run(self) -> list[CellOutcome]:
        """Stream the users, then finish the cells in pass order: a fused cell once the
        deps it was fused with are final."""
        loop_start = time.perf_counter()
        try:
            self.stream()
        except Exception as exc:  # noqa: BLE001 - a source, the cache or a lease failed
            self.settle(exc)
        compute = time.perf_counter() - loop_start
        results: dict[str, CellOutcome] = {}
        for run in self.runs:  # the group's order: its own cells, then later passes
            if is_provisional(run.task):
                run.phases["compute"] = compute
                run.done = self._complete(run, results)
            elif run.done is None:
                run.phases["compute"] = compute
                run.done = finish(self.env, self.group, run)
            results[run.task.name] = run.done
        return [run.done for run in self.runs]  # type: ignore[misc]  # every run is done by now

    def _complete(self, run: CellRun, results: dict[str, CellOutcome]) -> CellOutcome:
        env, group, task = self.env, self.group, run.task
        if run.done is not None and run.done.status != HELD:
            return run.done
        final = dict(task.dep_results)
        for label, value in task.dep_results.items():
            if value != FUSED:
                continue
            got = results.get(env.by_label[label].name)
            if got is None or got.status != Status.RAN or got.result_hash is None:
                release(env, [run])
                return deferred(task)
            final[label] = got.result_hash
        key = input_key(task.static, task.root_fingerprints, final)
        run.task = replace(task, key=key, dep_results=final)
        run.hold = None
        previous = run.lease.previous
        if (
            previous is not None
            and previous.status == COMMITTED
            and previous.composite_hash == key
            and task.reason not in RERUN_EQUAL_KEY
        ):  # another builder committed exactly this meanwhile
            release(env, [run])
            return CellOutcome(
                task.name,
                task.day,
                Status.SKIPPED,
                Reason.UP_TO_DATE,
                result_hash=previous.result_hash,
            )
        held = self.held.pop(id(run), None)
        if held is not None:
            run.done = None
            return abort_run(env, group, run, held[0], phases=held[1])
        run.done = None
        return finish(env, group, run)
