"""Run the cells of one (date, pass) group and commit them.

per_user cells of a group share one stream of users: every user-scope root source (and the
per_user results they depend on) is read as a generator in ascending user order and merged,
so each user's records are read once and handed to every calculation of the pass. Results go
to each cell's :class:`~btbuild.storage.base.ResultWriter` as they come and are flushed every
``flush_every`` users, or earlier when memory use passes ``memory_fraction``: memory stays
flat however many users there are. A cell is committed only when its whole stream succeeded
(circuit breaker, validators); otherwise the previous result stays visible.
"""

from __future__ import annotations

import contextlib
import heapq
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import psutil

from btbuild.analysis.cells import PREVIOUS
from btbuild.errors import (
    BtbuildError,
    CalculationError,
    DamagedResult,
    DepsMoved,
    LeaseLost,
    SourceError,
)
from btbuild.execution.commits import HOOK_FAILED, after_commit, previous_hash
from btbuild.execution.context import Context, UserRecords
from btbuild.execution.guard import calc_output, describe, raised_by_calc
from btbuild.execution.heartbeat import Heartbeat
from btbuild.execution.liveness import is_dead_local_owner, owner_id
from btbuild.execution.loader import CalculationLoader, Process
from btbuild.execution.schemas import schema_validators
from btbuild.execution.segments import membership
from btbuild.execution.tasks import CellOutcome, CellTask, GroupTask, part_name
from btbuild.plugins.manager import Plugins
from btbuild.plugins.sources import RootSource, in_shard
from btbuild.plugins.validators import ResultValidator
from btbuild.storage.base import Backend, ResultWriter
from btbuild.storage.records import (
    COMMITTED,
    DEAD_LETTER,
    EXPIRED,
    FAILED,
    RUNNING,
    CellRecord,
    Lease,
    RunRecord,
)
from btbuild.workspace.model import Target, Workspace

MEMORY_CHECK_EVERY = 512  # users between two RSS checks (psutil costs ~20 us)


def worker_id() -> str:
    """This process as a lease owner: ``<start time>@<host>:<pid>`` (see liveness.py)."""
    return owner_id()


def static_hashes(session: Any) -> dict[str, str]:
    """Target name -> static hash of the code this process would run."""
    return {name: hashes.static for name, hashes in session.hashes.items()}


def _source_failed(
    source: str, day: date, exc: Exception, what: str = "read its users"
) -> SourceError:
    detail = str(exc) if isinstance(exc, BtbuildError) else f"{type(exc).__name__}: {exc}"
    return SourceError(f"root source {source!r} failed to {what} on {day.isoformat()}: {detail}")


def _named(users: Iterator[tuple[str, Any]], source: str, day: date) -> Iterator[tuple[str, Any]]:
    """A user stream whose failures name the source."""
    try:
        yield from users
    except Exception as exc:  # noqa: BLE001 - any failure of a source plugin
        failure = _source_failed(source, day, exc)
        failure.stream = stream_name("root", source, day)
        raise failure from None


def stream_name(kind: str, name: str, day: date) -> str:
    """What a user stream of a group is, in messages (and to find the cells reading it)."""
    if kind == "root":
        return f"root source {name!r} on {day.isoformat()}"
    return f"the result of {name} on {day.isoformat()}"


class Environment:
    """What a process needs to run cells: workspace, sources, calculation code, the cache."""

    def __init__(
        self,
        workspace: Workspace,
        plugins: Plugins,
        backend: Backend,
        static_hashes: Mapping[str, str] | None = None,
    ):
        self.workspace = workspace
        # this process's own static hash per target: a task planned from other code (a worker
        # deployed from another revision) is refused instead of caching wrong results
        self.static_hashes = static_hashes
        self.plugins = plugins
        self.sources: dict[str, RootSource] = plugins.root_sources()
        self.backend = backend
        self.loader = CalculationLoader(workspace)
        self.by_label = workspace.by_label()
        self.owner = worker_id()
        # renews the leases of running cells, so a short lease_seconds is safe however long
        # a calculation runs (a dead process's cells are taken over within about one lease)
        self.heartbeat = Heartbeat(backend.renew, workspace.execution.lease_seconds / 3)
        self._roots: OrderedDict[tuple[str, date], Any] = OrderedDict()
        self._process = psutil.Process()
        self._memory_limit = psutil.virtual_memory().total * workspace.execution.memory_fraction

    def load_root(self, source: str, day: date) -> Any:
        """A date-scope source's value for ``day`` (None when it has no data); kept in a small LRU."""
        key = (source, day)
        if key in self._roots:
            self._roots.move_to_end(key)
            return self._roots[key]
        root = self.sources[source]
        try:
            value = root.load(day) if root.available(day) else None
        except Exception as exc:  # noqa: BLE001 - any failure of a source plugin
            raise _source_failed(source, day, exc, "load its data") from None
        self._roots[key] = value
        if len(self._roots) > 256:
            self._roots.popitem(last=False)
        return value

    def users(
        self, source: str, day: date, shard: int = 0, shards: int = 1
    ) -> Iterator[tuple[str, Any]]:
        root = self.sources[source]
        try:
            if not root.available(day):
                return iter(())
            users = root.users(day) if shards == 1 else root.users_in_shard(day, shard, shards)
        except Exception as exc:  # noqa: BLE001 - any failure of a source plugin
            failure = _source_failed(source, day, exc)
            failure.stream = stream_name("root", source, day)
            raise failure from None
        return _named(users, source, day)

    def memory_high(self) -> bool:
        return bool(self._process.memory_info().rss > self._memory_limit)


@dataclass
class Attempt:
    """One attempt at a cell: what its commit (or abort) needs."""

    task: CellTask
    target: Target
    lease: Lease
    writer: ResultWriter
    validators: list[ResultValidator]
    started: float
    processed: int = 0
    failures: int = 0
    first_error: str | None = None
    phases: dict[str, float] = field(default_factory=dict)


@dataclass(kw_only=True)
class CellRun(Attempt):
    """The state of one cell while its group runs its calculation."""

    process: Process
    ctx: Context
    universe: tuple[int, ...] = ()  # stream indices whose users this cell processes
    today: tuple[tuple[str, int], ...] = ()  # (source, stream index)
    history: tuple[tuple[str, int, int], ...] = ()  # (source, days_ago, stream index)
    user_deps: tuple[tuple[str, int], ...] = ()  # (dep name, stream index)
    user_history: tuple[tuple[str, int, int], ...] = ()  # (dep name, days ago, stream index)
    previous_index: int | None = None
    segment: tuple[int, Any] | None = None  # (stream index of the segment source, accepts)
    done: CellOutcome | None = None


def run_group(env: Environment, group: GroupTask) -> list[CellOutcome]:
    if group.combine:
        return [_combine(env, group, cell) for cell in group.cells]
    with calc_output():  # what calculations print is their log (stderr), never the report
        return _run_group(env, group)


def _run_group(env: Environment, group: GroupTask) -> list[CellOutcome]:
    outcomes: list[CellOutcome] = []
    per_user: list[CellRun] = []
    current: CellRun | None = None
    try:
        for cell in group.cells:
            target = env.workspace.targets[cell.name]
            run_or_outcome = _start(env, group, cell, target)
            if isinstance(run_or_outcome, CellOutcome):
                outcomes.append(run_or_outcome)
            elif target.kind == "per_user":
                per_user.append(run_or_outcome)
            else:
                current = run_or_outcome
                outcomes.append(_run_per_date(env, group, run_or_outcome))
                current = None
        if per_user:
            outcomes.extend(_run_per_user(env, group, per_user))
    except BaseException:  # Ctrl-C or shutdown: give the cells back as they were, then stop
        _release(env, [run for run in [*per_user, current] if run is not None and run.done is None])
        raise
    order = {cell.name: index for index, cell in enumerate(group.cells)}
    return sorted(outcomes, key=lambda outcome: order[outcome.name])


def _lease(env: Environment, cell: CellTask, store: str) -> Lease | CellOutcome:
    """Take the lease of the cell stored as ``store``; an outcome when it cannot or need not run."""
    settings = env.workspace.execution
    iso = cell.day.isoformat()
    lease = env.backend.acquire(store, iso, env.owner, settings.lease_seconds)
    if lease is None:
        holder = env.backend.get_cell(store, iso)
        if holder is not None and holder.lease_owner and is_dead_local_owner(holder.lease_owner):
            lease = env.backend.acquire(
                store, iso, env.owner, settings.lease_seconds, dead_owners=(holder.lease_owner,)
            )
    if lease is None:
        return CellOutcome(
            cell.name, cell.day, "blocked", "leased", error="another builder holds its lease"
        )
    previous = lease.previous
    if (
        previous is not None
        and previous.status == RUNNING
        and previous.lease_generation not in (None, previous.generation)
    ):
        # a zombie: its builder died mid-attempt; what it wrote was never visible, drop it
        env.backend._delete_generation(store, iso, previous.lease_generation)
    if previous is not None and previous.status == RUNNING and previous.lease_owner:
        _log_takeover(env, cell, store, previous)
    if (
        previous is not None
        and previous.status == COMMITTED
        and previous.composite_hash == cell.key
        and cell.reason not in ("forced", "damaged", "cosmetic_recheck")  # re-run an equal key
    ):
        env.backend.release(lease)  # someone else committed exactly this meanwhile
        return CellOutcome(
            cell.name, cell.day, "skipped", "up_to_date", result_hash=previous.result_hash
        )
    env.heartbeat.hold(lease)
    return lease


def _log_takeover(env: Environment, cell: CellTask, store: str, previous: CellRecord) -> None:
    """The run log records that this process took over a dead (or stalled) attempt."""
    now = time.time()
    env.backend.append_run(
        RunRecord(
            run_id=f"takeover/{previous.lease_generation}",
            target=store,
            date=cell.day.isoformat(),
            status="taken_over",
            build_pass=cell.build_pass,
            worker_id=previous.lease_owner or "",
            trigger=cell.reason,
            started=previous.started_at,
            duration=max(0.0, now - previous.started_at),
            error=(
                f"lease of {previous.lease_owner} (expired at {time.strftime('%H:%M:%S', time.gmtime(previous.lease_expires))} UTC) "
                f"taken over by {env.owner} at {time.strftime('%H:%M:%S', time.gmtime(now))} UTC"
            ),
        )
    )


def _start(
    env: Environment, group: GroupTask, cell: CellTask, target: Target
) -> CellRun | CellOutcome:
    """Take the cell's lease and prepare its context; an outcome if it cannot or need not run.
    A part of a sharded cell is stored under its part name and checked only when combined."""
    started = time.perf_counter()
    mine = env.static_hashes.get(cell.name) if env.static_hashes is not None else cell.static
    if mine != cell.static:
        return CellOutcome(
            cell.name,
            cell.day,
            FAILED,
            cell.reason,
            error=(
                f"{target.label}: this worker's code or workspace differs from the one the build was planned "
                f"with (static hash {mine} here, {cell.static} planned): run workers from the same revision"
            ),
        )
    store = (
        cell.name
        if group.shards == 1
        else part_name(cell.name, cell.day, group.shard, group.shards)
    )
    lease = _lease(env, cell, store)
    if isinstance(lease, CellOutcome):
        return lease
    writer = env.backend.open_writer(lease, target.kind)
    try:
        check_reads(env, target, cell)
        process = env.loader.factory(target)()
        validators = (
            []
            if group.shards > 1
            else env.plugins.validators(target.name, target.kind, target.checks, target.build_file)
            + schema_validators(target)
        )
        by_name = {env.by_label[label].name: env.by_label[label] for label in target.deps}
        dep_names = {name: name for name in by_name} | {
            dep.label: name for name, dep in by_name.items()
        }
        whole = {}
        for name, dep in by_name.items():
            if target.kind == "per_date" or dep.kind == "per_date":
                whole[name] = env.backend.read_expected(
                    name, cell.dep_dates[name].isoformat(), cell.dep_results.get(dep.label)
                )
        history = {}
        for key, dep_day in cell.dep_dates.items():  # "name@-j": dep_lookback reads
            name, at, back = key.partition("@-")
            if at and (target.kind == "per_date" or by_name_kind(env, name) == "per_date"):
                history[(name, int(back))] = env.backend.read_result(name, dep_day.isoformat())
        previous_value = None
        if target.historical and target.kind == "per_date" and cell.previous_date is not None:
            previous_value = env.backend.read_expected(
                target.name, cell.previous_date.isoformat(), cell.dep_results.get(PREVIOUS)
            )
        user_sources = frozenset(s for s in target.all_roots if env.sources[s].scope == "user")
        ctx = Context(
            target,
            cell.day,
            root_loader=env.load_root,
            user_sources=user_sources,
            dep_names=dep_names,
            whole_deps=whole,
            dep_history=history,
            previous=previous_value,
        )
    except DamagedResult as exc:
        return _give_back_damaged(env, [(cell, target, lease)], exc)[0]
    except BtbuildError as exc:
        return _abort(env, group, cell, lease, writer, str(exc), started)
    run = CellRun(cell, target, lease, writer, validators, started, process=process, ctx=ctx)
    run.phases["setup"] = time.perf_counter() - started
    return run


def check_reads(env: Environment, target: Target, cell: CellTask) -> None:
    """Refuse to run on a dep or previous result that ``btbuild gc`` collected (the build
    recomputes those first; reading one anyway would compute from nothing)."""
    reads = [(key.partition("@")[0], day) for key, day in cell.dep_dates.items()]
    if cell.previous_date is not None:
        reads.append((target.name, cell.previous_date))
    for name, day in reads:
        record = env.backend.get_cell(name, day.isoformat())
        if record is not None and record.status == EXPIRED:
            raise BtbuildError(
                f"{target.label}: the result of {name} on {day.isoformat()} it reads was collected "
                "(btbuild gc) and not recomputed: build again"
            )


def _combine(env: Environment, group: GroupTask, cell: CellTask) -> CellOutcome:
    """Merge the committed parts of a sharded per_user cell into the cell itself: the parts'
    canonical lines are merged in user order and written as they are (nothing is computed or
    encoded again), the validators see every user, and the result hash — order-independent —
    is the one an unsharded run gives. The parts are deleted once the cell is committed."""
    started = time.perf_counter()
    iso = cell.day.isoformat()
    target = env.workspace.targets[cell.name]
    parts = [part_name(cell.name, cell.day, shard, group.shards) for shard in range(group.shards)]
    for part in parts:
        record = env.backend.get_cell(part, iso)
        if record is None or record.status != COMMITTED or record.composite_hash != cell.key:
            return CellOutcome(
                cell.name,
                cell.day,
                FAILED,
                cell.reason,
                error=f"{target.label}: part {part} is missing: run the build again",
            )
    lease = _lease(env, cell, cell.name)
    if isinstance(lease, CellOutcome):
        if lease.status == "skipped":
            _drop_parts(env, parts, iso)
        return lease
    writer = env.backend.open_writer(lease, "per_user")
    try:
        validators = env.plugins.validators(
            target.name, target.kind, target.checks, target.build_file
        ) + schema_validators(target)
        streams = [env.backend.iter_result_lines(part, iso) for part in parts]
        merged = heapq.merge(*streams, key=lambda item: item[0])
        users = 0

        def lines() -> Iterator[tuple[str, bytes]]:
            nonlocal users
            for user_id, value, line in merged:
                users += 1
                for validator in validators:
                    validator.observe(user_id, value)
                yield user_id, line

        writer.add_lines(lines())
        attempt = Attempt(cell, target, lease, writer, validators, started, processed=users)
        attempt.phases["combine"] = time.perf_counter() - started
    except BtbuildError as exc:
        return _abort(
            env,
            group,
            cell,
            lease,
            writer,
            f"{target.label}: combining {group.shards} parts failed: {exc}",
            started,
        )
    outcome = _commit(env, group, attempt)
    if outcome.status == "ran":
        _drop_parts(env, parts, iso)
    return outcome


def _drop_parts(env: Environment, parts: list[str], iso: str) -> None:
    for part in parts:  # part names hold the date: each names exactly one cell
        env.backend.delete_target(part)


def _release(env: Environment, runs: list[CellRun]) -> None:
    """Undo unfinished attempts: their shards are dropped and each cell is as it was before
    (an interruption is not a failed attempt, so nothing is counted towards max_attempts)."""
    for run in runs:
        env.heartbeat.drop(run.lease)
        try:
            env.backend._delete_generation(
                run.lease.target, run.task.day.isoformat(), run.lease.generation
            )
            env.backend.release(run.lease)
        except Exception:  # noqa: BLE001 - best effort while stopping; the lease expires anyway
            continue


def _abort(
    env: Environment,
    group: GroupTask,
    cell: CellTask,
    lease: Lease,
    writer: ResultWriter,
    error: str,
    started: float,
    *,
    items: int = 0,
    failures: int = 0,
    phases: dict[str, float] | None = None,
) -> CellOutcome:
    env.heartbeat.drop(lease)
    max_attempts = env.workspace.execution.max_attempts
    attempts = attempts_of(lease, cell.key)
    status = DEAD_LETTER if attempts >= max_attempts else FAILED
    if status == DEAD_LETTER:
        error = f"{error} (attempt {attempts} of {max_attempts}: dead-lettered)"
    if writer.abort(error, status=status) is not None:  # failures belong to these inputs
        env.backend.put_cell_status(
            lease.target, lease.date, status, attempts=attempts, attempt_key=cell.key
        )
    duration = time.perf_counter() - started
    _log_run(env, group, cell, lease, status, duration, phases or {}, error)
    return CellOutcome(
        cell.name,
        cell.day,
        status,
        cell.reason,
        items=items,
        failures=failures,
        duration=duration,
        error=error,
        phases=phases or {},
    )


def attempts_of(lease: Lease, key: str) -> int:
    """The attempts made at the cell with the input key ``key``, this one included: failures
    of other inputs (the code, a dep, a root changed since) do not count towards
    ``max_attempts``."""
    previous = lease.previous
    if (
        previous is not None
        and previous.status in (FAILED, DEAD_LETTER)
        and previous.attempt_key not in (None, key)
    ):
        return 1
    return lease.attempts


def _commit(env: Environment, group: GroupTask, run: Attempt) -> CellOutcome:
    cell = run.task
    problems = [problem for validator in run.validators for problem in validator.finish()]
    if problems:
        return _abort(
            env,
            group,
            cell,
            run.lease,
            run.writer,
            f"{run.target.label}: check failed: {'; '.join(problems)}",
            run.started,
            items=run.processed,
            failures=run.failures,
            phases=run.phases,
        )
    commit_start = time.perf_counter()
    try:
        record = run.writer.commit(
            composite_hash=cell.key,
            components=dict(cell.components, static=cell.static),
            code_hash=cell.code_hash,
            sim_hash=cell.sim_hash,
            dep_results=dict(cell.dep_results),
            root_fingerprints=dict(cell.root_fingerprints),
            category=run.target.package,
            expect_deps=_dep_cells(env, cell),
        )
    except LeaseLost as exc:
        return CellOutcome(cell.name, cell.day, "blocked", "leased", error=str(exc))
    except DepsMoved as exc:  # the scheduler plans the cell again from the cache as it is now
        return CellOutcome(cell.name, cell.day, "blocked", "deps_moved", error=str(exc))
    finally:
        env.heartbeat.drop(run.lease)
    run.phases["commit"] = time.perf_counter() - commit_start
    hooks = None
    if group.shards == 1 or group.combine:  # a part of a sharded cell is not a cell
        hooks = after_commit(env, run.target, cell.day, record, previous_hash(run.lease.previous))
    duration = time.perf_counter() - run.started
    error = hooks
    if run.failures:
        error = f"{run.failures} of {run.processed} users failed (within max_failure_rate); first: {run.first_error}"
        error = f"{error}; {hooks}" if hooks else error
    _log_run(env, group, cell, run.lease, COMMITTED, duration, run.phases, error, record)
    return CellOutcome(
        cell.name,
        cell.day,
        "ran",
        cell.reason if hooks is None else HOOK_FAILED,
        result_hash=record.result_hash,
        items=record.item_count,
        failures=run.failures,
        duration=duration,
        error=error,
        phases=run.phases,
    )


def _dep_cells(env: Environment, cell: CellTask) -> dict[tuple[str, str], str]:
    """(dep target, ISO date) -> the result hash the cell was computed from, for every dep
    cell it read (its own previous day too): what the commit compares and sets."""
    expected = {}
    for label, result_hash in cell.dep_results.items():
        if label == PREVIOUS:
            if cell.previous_date is not None:
                expected[(cell.name, cell.previous_date.isoformat())] = result_hash
            continue
        dep_label, at, back = label.partition("@-")  # dep_lookback: an earlier result
        name = env.by_label[dep_label].name
        day = cell.dep_dates.get(f"{name}@-{back}" if at else name)
        if day is not None:  # None: a look-back day without a result (nothing to compare)
            expected[(name, day.isoformat())] = result_hash
    return expected


def _log_run(
    env: Environment,
    group: GroupTask,
    cell: CellTask,
    lease: Lease,
    status: str,
    duration: float,
    phases: dict[str, float],
    error: str | None,
    record: CellRecord | None = None,
) -> None:
    """One run-log record per attempt: ``<build run id>/<attempt generation>``; ``record``
    is the committed cell (its users and shards are logged)."""
    env.backend.append_run(
        RunRecord(
            run_id=f"{group.run_id}/{lease.generation}",
            target=lease.target,
            date=cell.day.isoformat(),
            status=status,
            build_pass=cell.build_pass,
            worker_id=env.owner,
            trigger=cell.reason,
            started=time.time() - duration,
            duration=duration,
            phases={k: round(v, 6) for k, v in phases.items()},
            error=error,
            items=record.item_count if record is not None else 0,
            shards=record.shard_count if record is not None else 0,
            changed=cell.changed,
        )
    )


def _run_per_date(env: Environment, group: GroupTask, run: CellRun) -> CellOutcome:
    cell = run.task
    compute_start = time.perf_counter()
    try:
        value = run.process(run.ctx)
    except SourceError as exc:
        return _abort(
            env, group, cell, run.lease, run.writer, f"{run.target.label}: {exc}", run.started
        )
    except BaseException as exc:
        if not raised_by_calc(exc):
            raise
        return _abort(
            env,
            group,
            cell,
            run.lease,
            run.writer,
            f"{run.target.label}: {describe(exc)}",
            run.started,
        )
    try:
        run.writer.add(value)
    except CalculationError as exc:
        return _abort(
            env,
            group,
            cell,
            run.lease,
            run.writer,
            f"{run.target.label}: returned a value that is not JSON: {exc}",
            run.started,
        )
    for validator in run.validators:
        validator.observe(None, value)
    run.processed = 1
    run.phases["compute"] = time.perf_counter() - compute_start
    return _commit(env, group, run)


def _run_per_user(env: Environment, group: GroupTask, runs: list[CellRun]) -> list[CellOutcome]:
    workspace = env.workspace
    by_name = {target.label: target for target in workspace.targets.values()}
    streams: dict[tuple[str, str, date], int] = {}  # (kind, name, day) -> index
    factories: list[Any] = []
    names: list[str] = []  # what each stream is, for messages

    def stream(kind: str, name: str, day: date, expected: str | None = None) -> int:
        """``expected``: the result hash the cell was planned with (a result stream that
        does not match it is damaged, never empty)."""
        key = (kind, name, day)
        if key not in streams:
            streams[key] = len(factories)
            names.append(stream_name(kind, name, day))
            if kind == "root":  # a source reads only the part's users where it can
                factories.append(lambda n=name, d=day: env.users(n, d, group.shard, group.shards))
            elif group.shards > 1:
                factories.append(
                    lambda n=name, d=day, h=expected: in_shard(
                        _result_stream(env.backend, n, d, h), group.shard, group.shards
                    )
                )
            else:
                factories.append(
                    lambda n=name, d=day, h=expected: _result_stream(env.backend, n, d, h)
                )
        return streams[key]

    for run in runs:
        target, cell = run.target, run.task
        user_roots = sorted(s for s in target.all_roots if env.sources[s].scope == "user")
        run.today = tuple((source, stream("root", source, cell.day)) for source in user_roots)
        run.history = tuple(
            (source, back, stream("root", source, cell.day - timedelta(days=back)))
            for source in user_roots
            for back in range(1, target.lookback_days(source) + 1)
        )
        user_deps = [
            (by_name[label].name, cell.dep_results.get(label))
            for label in target.deps
            if by_name[label].kind == "per_user"
        ]
        run.user_deps = tuple(
            (name, stream("result", name, cell.dep_dates[name], expected))
            for name, expected in user_deps
        )
        run.user_history = tuple(
            (name, int(back), stream("result", name, dep_day))
            for name, at, back, dep_day in (
                (*key.partition("@-"), dep_day) for key, dep_day in cell.dep_dates.items()
            )
            if at and by_name_kind(env, name) == "per_user"
        )
        if target.historical and cell.previous_date is not None:
            run.previous_index = stream(
                "result", target.name, cell.previous_date, cell.dep_results.get(PREVIOUS)
            )
        run.universe = tuple(index for _, index in run.today) + tuple(
            index for _, index in run.user_deps
        )
        if target.users is not None:
            segment = workspace.segments[target.users]
            accepts = membership(segment, env.plugins.segment_predicates)
            run.segment = (stream("root", segment.source, cell.day), accepts)

    settings = workspace.execution
    flush_every = settings.flush_every
    loop_start = time.perf_counter()
    users = 0
    last_renew = time.monotonic()
    try:
        for user_id, values in _merge([factory() for factory in factories], names):
            users += 1
            for run in runs:
                if run.done is not None or not any(index in values for index in run.universe):
                    continue
                _process_user(env, group, run, user_id, values)
            if users % flush_every == 0:
                for run in runs:
                    if run.done is None:
                        run.writer.flush()
            if users % MEMORY_CHECK_EVERY == 0:
                if env.memory_high():
                    for run in runs:
                        if run.done is None:
                            run.writer.flush()
                if time.monotonic() - last_renew > settings.lease_seconds / 3:
                    last_renew = time.monotonic()
                    for run in runs:
                        if run.done is None:
                            run.lease = env.backend.renew(run.lease)
                            run.writer.lease = run.lease
    except LeaseLost as exc:
        for run in runs:
            if run.done is None:
                run.done = CellOutcome(
                    run.task.name, run.task.day, "blocked", "leased", error=str(exc)
                )
    except DamagedResult as exc:  # an input was damaged after the plan checked it
        hit, spared = _readers_of(runs, names, exc)
        given = _give_back_damaged(env, [(run.task, run.target, run.lease) for run in hit], exc)
        for run, outcome in zip(hit, given, strict=True):
            run.done = outcome
        _run_again(env, group, spared)
    except Exception as exc:  # a source or the cache failed: not the calculations' fault
        message = (
            str(exc)
            if isinstance(exc, BtbuildError)
            else f"reading the user stream for {group.day.isoformat()} failed: {type(exc).__name__}: {exc}"
        )
        hit, spared = _readers_of(runs, names, exc)
        _run_again(env, group, spared)
        for run in hit:
            if run.done is None:
                run.done = _abort(
                    env,
                    group,
                    run.task,
                    run.lease,
                    run.writer,
                    message,
                    run.started,
                    items=run.processed,
                    failures=run.failures,
                )
    compute = time.perf_counter() - loop_start
    outcomes = []
    for run in runs:
        if run.done is None:
            run.phases["compute"] = compute
            run.done = _finish_per_user(env, group, run)
        outcomes.append(run.done)
    return outcomes


def _readers_of(
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
    hit = [run for run in left if _streams_of(run) & bad]
    return hit, [run for run in left if not any(run is other for other in hit)]


def _streams_of(run: CellRun) -> set[int]:
    streams = {index for _, index in run.today} | {index for _, index in run.user_deps}
    streams |= {index for _, _, index in run.history}
    if run.previous_index is not None:
        streams.add(run.previous_index)
    return streams


def _run_again(env: Environment, group: GroupTask, runs: list[CellRun]) -> None:
    """Cells whose shared user stream failed in a stream they do not read: their attempts
    are given back (nothing counted) and they run again, without that stream."""
    if not runs:
        return
    _release(env, runs)
    again: list[tuple[CellRun, CellRun]] = []
    for run in runs:
        started = _start(env, group, run.task, run.target)
        if isinstance(started, CellOutcome):
            run.done = started
        else:
            again.append((run, started))
    outcomes = _run_per_user(env, group, [fresh for _, fresh in again])
    for (run, _fresh), outcome in zip(again, outcomes, strict=True):
        run.done = outcome


def _process_user(
    env: Environment, group: GroupTask, run: CellRun, user_id: str, values: dict[int, Any]
) -> None:
    """Call the cell's calculation for one user and hand the value to its writer."""
    if run.segment is not None and not in_segment(run, user_id, values):
        return
    ctx = run.ctx
    today = {source: values.get(index) for source, index in run.today}
    history = (
        {(source, back): values.get(index) for source, back, index in run.history}
        if run.history
        else _EMPTY
    )
    ctx.user = UserRecords(ctx, user_id, today, history)
    if run.user_deps:
        ctx._user_deps = {name: values.get(index) for name, index in run.user_deps}
    if run.user_history:
        ctx._user_dep_history = {
            (name, back): values.get(index) for name, back, index in run.user_history
        }
    if run.previous_index is not None:
        ctx.previous = values.get(run.previous_index)
    run.processed += 1
    try:
        value = run.process(ctx)
        if value is not None:
            run.writer.add_user(user_id, value)
    except SourceError as exc:  # a date-scope source failed: this cell stops, naming it
        run.done = _abort(
            env,
            group,
            run.task,
            run.lease,
            run.writer,
            f"{run.target.label}: {exc}",
            run.started,
            items=run.processed,
            failures=run.failures,
        )
        return
    except BaseException as exc:
        if not raised_by_calc(exc):
            raise
        run.failures += 1
        if run.first_error is None:
            detail = str(exc) if isinstance(exc, CalculationError) else describe(exc)
            run.first_error = f"user {user_id}: {detail}"
        _check_breaker(env, group, run)
        return
    for validator in run.validators:
        validator.observe(user_id, value)


_EMPTY: dict[Any, Any] = {}


def by_name_kind(env: Environment, name: str) -> str:
    return env.workspace.targets[name].kind


def in_segment(run: CellRun, user_id: str, values: dict[int, Any]) -> bool:
    """Whether the user belongs to the cell's segment; a failing predicate counts as a
    failed user of the cell (its circuit breaker decides)."""
    index, accepts = run.segment  # type: ignore[misc]
    try:
        return bool(accepts(values.get(index)))
    except BtbuildError as exc:
        run.processed += 1
        run.failures += 1
        run.first_error = run.first_error or f"user {user_id}: {exc}"
        return False


def _check_breaker(
    env: Environment, group: GroupTask, run: CellRun, *, final: bool = False
) -> None:
    settings = env.workspace.execution
    if not final and run.processed < settings.min_items:
        return
    rate = run.failures / run.processed if run.processed else 0.0
    if rate > settings.max_failure_rate:
        message = (
            f"{run.target.label}: circuit breaker: {run.failures} of {run.processed} users failed "
            f"({rate:.1%} > max_failure_rate {settings.max_failure_rate:.1%}); first: {run.first_error}"
        )
        run.done = _abort(
            env,
            group,
            run.task,
            run.lease,
            run.writer,
            message,
            run.started,
            items=run.processed,
            failures=run.failures,
            phases=run.phases,
        )


def _finish_per_user(env: Environment, group: GroupTask, run: CellRun) -> CellOutcome:
    _check_breaker(env, group, run, final=True)
    if run.done is not None:
        return run.done
    return _commit(env, group, run)


def _result_stream(
    backend: Backend, name: str, day: date, expected: str | None = None
) -> Iterator[tuple[str, Any]]:
    if expected is None and not backend.has_result(name, day.isoformat()):
        return iter(())
    return backend.iter_result(name, day.isoformat(), expected)


def _give_back_damaged(
    env: Environment, cells: list[tuple[CellTask, Target, Lease]], exc: DamagedResult
) -> list[CellOutcome]:
    """An input result the plan found intact is damaged now: the cells reading it are given
    back (no attempt counted), the damaged cell is forgotten so the next build rebuilds it,
    and each cell fails this build with the reason (exit 1, never a result built from it)."""
    if exc.target is not None and exc.date is not None:
        env.backend.forget_result(exc.target, exc.date)
    outcomes = []
    for task, target, lease in cells:
        env.heartbeat.drop(lease)
        with contextlib.suppress(Exception):  # best effort: the lease expires anyway
            env.backend.release(lease)
        outcomes.append(
            CellOutcome(
                task.name,
                task.day,
                FAILED,
                task.reason,
                error=f"{target.label}: an input is damaged: {exc}; the next build rebuilds it",
            )
        )
    return outcomes


def _tag(stream: Iterator[tuple[str, Any]], index: int) -> Iterator[tuple[str, int, Any]]:
    for user_id, value in stream:
        yield user_id, index, value


def _merge(
    streams: list[Iterator[tuple[str, Any]]], names: list[str] | None = None
) -> Iterator[tuple[str, dict[int, Any]]]:
    """Merge ascending (user id, value) streams into (user id, {stream index: value});
    ``names`` say what each stream is in the error for a stream out of order."""

    def disorder(index: int, user_id: str, previous: str) -> BtbuildError:
        what = names[index] if names else f"user stream {index}"
        return SourceError(
            f"{what} is not in ascending user order: {user_id!r} came after {previous!r} "
            "(a source must yield its users sorted by id)",
            stream=what,
        )

    if len(streams) == 1:
        previous: str | None = None
        for user_id, value in streams[0]:
            if previous is not None and user_id <= previous:
                raise disorder(0, user_id, previous)
            previous = user_id
            yield user_id, {0: value}
        return
    tagged = [_tag(stream, index) for index, stream in enumerate(streams)]
    current: str | None = None
    values: dict[int, Any] = {}
    last_seen: dict[int, str] = {}
    for user_id, index, value in heapq.merge(*tagged, key=lambda item: (item[0], item[1])):
        previous = last_seen.get(index)
        if previous is not None and user_id <= previous:
            raise disorder(index, user_id, previous)
        last_seen[index] = user_id
        if user_id != current:
            if current is not None:
                yield current, values
            current, values = user_id, {}
        values[index] = value
    if current is not None:
        yield current, values
