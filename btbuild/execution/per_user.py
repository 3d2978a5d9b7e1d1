"""The per_user pass of a (date, pass) group: every per_user cell of the group, one stream.

Every user-scope root source (and the per_user result) the cells read is opened once and
read as a generator in ascending user order (:class:`~btbuild.execution.streams.StreamTable`);
the streams are merged, so each user's records are read once and handed to every calculation
of the pass. Results go to each cell's :class:`~btbuild.storage.base.ResultWriter` as they
come and are flushed every ``flush_every`` users, or earlier when memory use passes
``memory_fraction``: memory stays flat however many users there are. A cell is committed only
when its whole stream succeeded (circuit breaker, validators); otherwise the previous result
stays visible.

:class:`UserPass` is the seam: ``wire`` (which streams each cell reads), ``stream`` (the loop
over users: ``feed`` calls each cell for one user), ``settle`` (a stream failed: who read it),
``finish`` (breaker, commit).
"""

from __future__ import annotations

import time
from datetime import date, timedelta
from typing import Any

from btbuild.analysis.cells import PREVIOUS
from btbuild.errors import BtbuildError, CalculationError, DamagedResult, LeaseLost, SourceError
from btbuild.execution.attempt import CellRun, give_back_damaged, release
from btbuild.execution.context import UserRecords
from btbuild.execution.environment import Environment, stream_name
from btbuild.execution.finish import abort_run, commit
from btbuild.execution.fresh import same_on_fresh_import
from btbuild.execution.guard import describe, raised_by_calc
from btbuild.execution.isolation import (
    Copies,
    InputsMutated,
    Snapshot,
    checked,
    snapshot,
    unchecked_before,
)
from btbuild.execution.segments import membership
from btbuild.execution.start import lookback_reads, start
from btbuild.execution.streams import StreamTable, merge_streams
from btbuild.execution.tasks import CellOutcome, GroupTask
from btbuild.vocabulary import Reason, Status

MEMORY_CHECK_EVERY = 512  # users between two RSS checks (psutil costs ~20 us)
_EMPTY: dict[Any, Any] = {}


def run_per_user(env: Environment, group: GroupTask, runs: list[CellRun]) -> list[CellOutcome]:
    """Run the started per_user cells of ``group`` over one merged user stream."""
    return UserPass(env, group, runs).run()


class UserPass:
    """One pass over the users of a group for its started per_user cells (``runs``)."""

    def __init__(self, env: Environment, group: GroupTask, runs: list[CellRun]):
        self.env = env
        self.group = group
        self.runs = runs
        self.table = StreamTable(env, group)
        self.by_label = {target.label: target for target in env.workspace.targets.values()}
        for run in runs:
            self.wire(run)
        # the distinct (source, stream index) lists of the cells' user roots: each user's
        # records are gathered once per list, not once per cell
        specs: dict[tuple[tuple[str, int], ...], int] = {}
        for run in runs:
            run.spec = specs.setdefault(run.today, len(specs))
        self.specs = list(specs)

    def todays(self, values: dict[int, Any]) -> list[dict[str, Any]]:
        """One user's root records for each spec (``run.spec``) of the pass."""
        return [{source: values.get(index) for source, index in spec} for spec in self.specs]

    def run(self) -> list[CellOutcome]:
        loop_start = time.perf_counter()
        try:
            self.stream()
        except Exception as exc:  # noqa: BLE001 - a source, the cache or a lease failed
            self.settle(exc)
        compute = time.perf_counter() - loop_start
        read = self.table.read_stamps()
        outcomes = []
        for run in self.runs:
            run.root_stamps.update((key, read[key]) for key in run.root_stamps if key in read)
            if run.done is None:
                run.phases["compute"] = compute
                run.done = finish(self.env, self.group, run)
            outcomes.append(run.done)
        return outcomes

    def wire(self, run: CellRun) -> None:
        """Which streams the cell reads: its user roots today and their look-back days, its
        per_user deps (and look-back days), its own previous result, its segment's source."""
        env, stream = self.env, self.table.stream
        target, cell = run.target, run.task
        run.isolate = (cell.name, cell.static) in env.mutators  # found changing its inputs
        user_roots = sorted(s for s in target.all_roots if env.sources[s].scope == "user")
        for source in user_roots:  # the data the streams will read: as it is when opened
            for back in range(target.lookback_days(source) + 1):
                day = cell.day - timedelta(days=back)
                run.root_stamps[(source, day)] = env.fingerprint(source, day)
        run.today = tuple((source, stream("root", source, cell.day)) for source in user_roots)
        run.history = tuple(
            (source, back, stream("root", source, cell.day - timedelta(days=back)))
            for source in user_roots
            for back in range(1, target.lookback_days(source) + 1)
        )
        user_deps = [
            (self.by_label[label].name, cell.dep_results.get(label))
            for label in target.deps
            if self.by_label[label].kind == "per_user"
        ]
        run.user_deps = tuple(
            (name, stream("result", name, cell.dep_dates[name], expected))
            for name, expected in user_deps
        )
        if run.user_deps:
            run.ctx.bind_user_deps(dict(run.user_deps))
        run.observing = [validator for validator in run.validators if not validator.settled]
        run.user_history = tuple(
            (name, back, stream("result", name, dep_day, expected))
            for name, back, dep_day, expected in lookback_reads(env, cell)
            if env.kind_of(name) == "per_user"
        )
        if target.historical and cell.previous_date is not None:
            run.previous_index = stream(
                "result", target.name, cell.previous_date, cell.dep_results.get(PREVIOUS)
            )
        run.universe = tuple(index for _, index in run.today) + tuple(
            index for _, index in run.user_deps
        )
        if target.users is not None:
            segment = env.workspace.segments[target.users]
            accepts = membership(segment, env.plugins.segment_predicates)
            run.segment = (stream("root", segment.source, cell.day), accepts)
        # nothing but today's records and deps to point at: process_user's short way
        run.plain = not (run.history or run.user_history or run.previous_index is not None)

    def stream(self) -> None:
        """The loop over the merged users: each cell whose streams hold the user gets it;
        writers are flushed every ``flush_every`` users (or when memory is high) and leases
        renewed every third of ``lease_seconds``."""
        env, runs = self.env, self.runs
        settings = env.workspace.execution
        flush_every = settings.flush_every
        last_renew = time.monotonic()
        merged = merge_streams(self.table.open(), self.table.names)
        for users, (user_id, values) in enumerate(merged, start=1):
            self.feed(user_id, values, users)
            if users % flush_every == 0:
                self._flush()
            if users % MEMORY_CHECK_EVERY == 0:
                if env.memory_high():
                    self._flush()
                if time.monotonic() - last_renew > settings.lease_seconds / 3:
                    last_renew = time.monotonic()
                    for run in runs:
                        if run.done is None:
                            run.lease = env.backend.renew(run.lease)
                            run.writer.lease = run.lease

    def feed(self, user_id: str, values: dict[int, Any], seq: int = 0) -> None:
        """One user's values (stream index -> value) to every unfinished cell reading them."""
        seq, taken = self.watch(values, seq)
        todays = self.todays(values)
        for run in self.runs:
            if run.done is not None or not any(index in values for index in run.universe):
                continue
            process_user(self.env, self.group, run, user_id, values, seq, todays[run.spec])
        self.verify(user_id, values, taken)

    def watch(self, values: dict[int, Any], seq: int) -> tuple[int, Snapshot | None]:
        """The user's place to hand the cells (0 when its inputs are shared unchecked) and the
        snapshot of its shared inputs to compare after the last cell (btbuild/execution/
        isolation.py): a user whose inputs ``marshal`` cannot hold is checked with copies."""
        if checked(seq) or sum(not run.isolate for run in self.runs) < 2:
            return (seq if checked(seq) else 0), None  # a sampled user; or no one to harm
        taken = snapshot(values)
        return (0, taken) if taken is not None else (seq, None)

    def verify(self, user_id: str, values: dict[int, Any], taken: Snapshot | None) -> None:
        """A cell changed the user's shared inputs: which one is not known, so the pass runs
        again from its start with every cell isolated (given copies)."""
        if taken is None or not taken.changed(values):
            return
        for run in self.runs:
            self.env.mutators.add((run.task.name, run.task.static))
        raise InputsMutated(f"a calculation changed the inputs of user {user_id} in place")

    def _flush(self) -> None:
        for run in self.runs:
            if run.done is None:
                run.writer.flush()
                run.observing = [check for check in run.observing if not check.settled]

    def settle(self, exc: Exception) -> None:
        """The stream stopped with ``exc``: the cells that read the failed stream end (blocked
        on a lost lease, given back on a damaged input, aborted on a failed source), the
        others are given back and run again without it."""
        env, group, runs = self.env, self.group, self.runs
        if isinstance(exc, LeaseLost):
            for run in runs:
                if run.done is None:
                    run.done = CellOutcome(
                        run.task.name, run.task.day, Status.BLOCKED, Reason.LEASED, error=str(exc)
                    )
            return
        if isinstance(exc, InputsMutated):  # again from the start, the changer isolated
            run_again(env, group, [run for run in runs if run.done is None])
            return
        hit, spared = readers_of(runs, self.table.names, exc)
        if isinstance(exc, DamagedResult):  # an input was damaged after the plan checked it
            given = give_back_damaged(env, [(run.task, run.target, run.lease) for run in hit], exc)
            for run, outcome in zip(hit, given, strict=True):
                run.done = outcome
            run_again(env, group, spared)
            return
        message = (  # a source or the cache failed: not the calculations' fault
            str(exc)
            if isinstance(exc, BtbuildError)
            else f"reading the user stream for {group.day.isoformat()} failed: {type(exc).__name__}: {exc}"
        )
        run_again(env, group, spared)
        for run in hit:
            if run.done is None:
                run.done = abort_run(env, group, run, message)


def readers_of(
    runs: list[CellRun], names: list[str], exc: Exception
) -> tuple[list[CellRun], list[CellRun]]:
    """The unfinished runs that read the stream ``exc`` came from, and the others (every run
    reads it when the stream is not known)."""
    if isinstance(exc, SourceError):
        failed = exc.stream
    elif isinstance(exc, DamagedResult) and exc.target is not None and exc.date is not None:
        failed = stream_name("result", exc.target, date.fromisoformat(exc.date))
    else:
        failed = None
    bad = {index for index, name in enumerate(names) if name == failed}
    left = [run for run in runs if run.done is None]
    if not bad:
        return left, []
    hit = [run for run in left if streams_of(run) & bad]
    if not hit:  # no run is known to read it: run again, they would fail again (forever)
        return left, []
    return hit, [run for run in left if not any(run is other for other in hit)]


def streams_of(run: CellRun) -> set[int]:
    """Every stream the run reads (see :meth:`UserPass.wire`)."""
    streams = {index for _, index in run.today} | {index for _, index in run.user_deps}
    streams |= {index for _, _, index in run.history}
    streams |= {index for _, _, index in run.user_history}
    if run.previous_index is not None:
        streams.add(run.previous_index)
    if run.segment is not None:
        streams.add(run.segment[0])
    return streams


def run_again(env: Environment, group: GroupTask, runs: list[CellRun]) -> None:
    """Cells whose shared user stream failed in a stream they do not read: their attempts
    are given back (nothing counted) and they run again, without that stream."""
    if not runs:
        return
    release(env, runs)
    again: list[tuple[CellRun, CellRun]] = []
    for run in runs:
        started = start(env, group, run.task, run.target)
        if isinstance(started, CellOutcome):
            run.done = started
        else:
            again.append((run, started))
    outcomes = run_per_user(env, group, [fresh for _, fresh in again])
    for (run, _fresh), outcome in zip(again, outcomes, strict=True):
        run.done = outcome


def process_user(
    env: Environment,
    group: GroupTask,
    run: CellRun,
    user_id: str,
    values: dict[int, Any],
    seq: int,
    today: dict[str, Any],
) -> Any:
    """Call the cell's calculation for one user and hand the value to its writer; the value
    written (None when none was: no value, a failure). ``seq``: the user's place in the pass
    (from 1) when its shared inputs are checked, else 0 (btbuild/execution/isolation.py).
    ``today``: the user's records of the cell's user roots (shared by the cells reading the
    same ones, as the records themselves are; not used when the cell gets copies)."""
    if run.segment is not None and not in_segment(run, user_id, values):
        return None
    ctx = run.ctx
    copies = None
    if run.plain and not seq and not run.isolate:  # today's records and deps, shared
        ctx.user = UserRecords(ctx, user_id, today, _EMPTY)
        ctx._values = values  # what ctx.dep reads (Context.bind_user_deps)
    else:
        copies = point(run, user_id, values, today, Copies(values) if seq or run.isolate else None)
    run.processed += 1
    try:
        value = run.process(ctx)
        if value is not None:
            run.writer.add_user(user_id, value)
    except SourceError as exc:  # a date-scope source failed: this cell stops, naming it
        run.done = abort_run(env, group, run, f"{run.target.label}: {exc}")
        value = None
    except BaseException as exc:
        if not raised_by_calc(exc):
            raise
        run.failures += 1
        if run.first_error is None:
            detail = str(exc) if isinstance(exc, CalculationError) else describe(exc)
            run.first_error = f"user {user_id}: {detail}"
        check_breaker(env, group, run)
        value = None
    else:
        for validator in run.observing:
            validator.observe(user_id, value)
        stateful = env.loader.state_problem(run.target, seq) if seq else None
        if stateful is not None and not same_on_fresh_import(
            env, run, lambda: point(run, user_id, values, today, Copies(values)), value
        ):  # this user's value depends on what earlier users left: nothing is kept
            run.done = abort_run(env, group, run, stateful)
            return None
    if copies is not None and not run.isolate and copies.changed():
        found_changing(env, run, seq)
    return value


def point(
    run: CellRun, user_id: str, values: dict[int, Any], today: dict[str, Any], copies: Any
) -> Any:
    """:func:`process_user`'s general case: point the cell's ctx at the user's records,
    look-back days, deps and previous value, each a copy when ``copies`` (a
    :class:`Copies`) is given; returns ``copies``."""
    get = values.get if copies is None else copies
    ctx = run.ctx
    deps: dict[int, Any] = values  # what ctx.dep reads (Context.bind_user_deps)
    if copies is not None:
        today = {source: get(index) for source, index in run.today}
        deps = {index: get(index) for _, index in run.user_deps}
    history = (
        {(source, back): get(index) for source, back, index in run.history}
        if run.history
        else _EMPTY
    )
    ctx.user = UserRecords(ctx, user_id, today, history)
    ctx._values = deps
    if run.user_history:
        ctx._user_dep_history = {(name, back): get(index) for name, back, index in run.user_history}
    if run.previous_index is not None:
        ctx.previous = get(run.previous_index)
    return copies


def found_changing(env: Environment, run: CellRun, seq: int) -> None:
    """``run``'s calculation changed an input it was given a copy of: it is given copies
    from now on; if users before this one were handed shared objects, the pass starts again."""
    env.mutators.add((run.task.name, run.task.static))
    run.isolate = True
    if unchecked_before(seq):
        raise InputsMutated(f"{run.target.label} changes its inputs in place")


def in_segment(run: CellRun, user_id: str, values: dict[int, Any]) -> bool:
    """Whether the user belongs to the cell's segment; a failing predicate counts as a
    failed user of the cell (its circuit breaker decides)."""
    index, accepts = run.segment  # type: ignore[misc]  # called only for runs with a segment
    try:
        return bool(accepts(values.get(index)))
    except BtbuildError as exc:
        run.processed += 1
        run.failures += 1
        run.first_error = run.first_error or f"user {user_id}: {exc}"
        return False


def check_breaker(env: Environment, group: GroupTask, run: CellRun, *, final: bool = False) -> None:
    """Abort the cell when more than ``max_failure_rate`` of its users failed (counted from
    ``min_items`` users on, or at the end)."""
    settings = env.workspace.execution
    if not final and run.processed < settings.min_items:
        return
    rate = run.failures / run.processed if run.processed else 0.0
    if rate > settings.max_failure_rate:
        message = (
            f"{run.target.label}: circuit breaker: {run.failures} of {run.processed} users failed "
            f"({rate:.1%} > max_failure_rate {settings.max_failure_rate:.1%}); first: {run.first_error}"
        )
        run.done = abort_run(env, group, run, message, phases=True)


def finish(env: Environment, group: GroupTask, run: CellRun) -> CellOutcome:
    """The cell's stream is done: the final breaker check, then the commit."""
    check_breaker(env, group, run, final=True)
    if run.done is not None:
        return run.done
    return commit(env, group, run)
