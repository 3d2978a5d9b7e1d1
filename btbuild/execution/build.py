"""``btbuild build``: catch up every matched target (and its deps) over a range of dates.

The scheduler walks (date, pass) groups. A group is decided (by the analysis stage's
:class:`~btbuild.analysis.planner.Planner`, reading the cache through :class:`StorageCache`)
when everything it can depend on is final, so every decision sees the real result hashes of
its deps (exact early cutoff).
Runnable cells of a group are run together (one shared user stream) inline or, with
``--jobs N``, in a pool of N processes; groups of different dates run in parallel unless a
pass looks back in time (historical targets, deps on targets with a sparser schedule), in
which case that pass runs in date order.
"""

from __future__ import annotations

import gc
import json
import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import (
    FIRST_COMPLETED,
    BrokenExecutor,
    Future,
    ProcessPoolExecutor,
    wait,
)
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from datetime import date
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from btbuild.analysis.cells import (
    BLOCKED,
    DEAD_LETTER,
    FAILED,
    RAN,
    RUNNABLE,
    SKIPPED,
    CellInputs,
    Decision,
    date_range,
)
from btbuild.analysis.planner import Planner
from btbuild.errors import UsageError
from btbuild.execution.liveness import start_worker
from btbuild.execution.runner import Environment, run_group, static_hashes
from btbuild.execution.tasks import CellOutcome, CellTask, GroupTask
from btbuild.execution.waiting import DEPS_MOVED, LeaseWaiter, is_leased_elsewhere, merge_rounds
from btbuild.plugins.rootindex import RootIndex
from btbuild.storage.base import CellSummary, summary_of
from btbuild.storage.records import COMMITTED, CellRecord
from btbuild.workspace.model import Target

Submit = Callable[[GroupTask], "Future[list[CellOutcome]]"]
MAX_REPLANS = 3  # rounds after the first when deps moved under this build (then: blocked)
SUMMARY_KEYS = ("ran", "skipped", "blocked", "impossible", "failed", "dead_letter")


@dataclass(frozen=True)
class BuildRequest:
    patterns: tuple[str, ...]
    end: date
    start: date | None = None  # --from; default: [workspace] start_date
    dry_run: bool = False
    jobs: int = 1
    force: bool = False  # re-run the matched targets' cells
    force_deps: bool = False  # ... and their deps' cells too
    retry_dead: bool = False  # re-run dead letters whose inputs did not change
    wait: bool = True  # wait for cells another live builder holds (--no-wait: report them)


@dataclass(slots=True)
class CellReport:
    label: str
    date: date
    status: str
    reason: str
    build_pass: int = 0
    detail: str | None = None
    items: int = 0

    def to_json(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "label": self.label,
            "date": self.date.isoformat(),
            "status": self.status,
            "reason": self.reason,
        }
        if self.detail:
            row["detail"] = self.detail
        return row


@dataclass
class _Flight:
    """A decided group whose tasks are out: futures left, parts back, final outcomes."""

    outstanding: int = 0
    parts: list[list[CellOutcome]] = field(default_factory=list)
    outcomes: list[CellOutcome] = field(default_factory=list)


@dataclass
class BuildReport:
    cells: list[CellReport] = field(default_factory=list)
    dry_run: bool = False

    def summary(self) -> dict[str, int]:
        keys = (RUNNABLE, *SUMMARY_KEYS) if self.dry_run else SUMMARY_KEYS
        counts = dict.fromkeys(keys, 0)
        for cell in self.cells:
            counts[cell.status] = counts.get(cell.status, 0) + 1
        return counts

    @property
    def ok(self) -> bool:
        """Every cell is done and current: nothing failed, was dead-lettered or is blocked
        (waiting for a dep or previous day that is not done, or for another builder), and
        every commit hook / alert of a committed cell succeeded."""
        return not any(
            cell.status in (FAILED, DEAD_LETTER, BLOCKED) or cell.reason == "commit_hook_failed"
            for cell in self.cells
        )

    def to_json(self) -> dict[str, Any]:
        return {"cells": [cell.to_json() for cell in self.cells], "summary": self.summary()}

    def json_text(self) -> str:
        """``to_json()`` as text, one cell per line: readable, and written by the C encoder
        (an indented dump of 365k cells goes through the pure-Python one: 10x slower)."""
        cells = ",\n  ".join(json.dumps(cell.to_json()) for cell in self.cells)
        summary = json.dumps(self.summary())
        if not cells:
            return f'{{"cells": [], "summary": {summary}}}'
        return f'{{"cells": [\n  {cells}\n],\n "summary": {summary}}}'


class StorageCache:
    """The planner's view of the action cache (:class:`~btbuild.analysis.planner.CacheView`):
    narrow summaries of every cell of the plan read up front, full records per target on first
    need. A target that moved to another package is a category migration: what its old package
    left is deleted (``migrate``; a dry run only ignores it) and it is built anew.

    Every cell of the plan is checked for damage up front (``Backend.check_results``: the
    record's seal and every shard's checksum). A damaged cell is treated as missing: it is
    left out of the summaries and listed in ``damaged`` (the planner runs it, reason
    ``damaged``); a real build (``migrate``) also forgets its record and shards first."""

    def __init__(
        self, backend: Any, targets: Mapping[str, Target], dates: list[date], *, migrate: bool
    ):
        self.backend = backend
        self.dates = dates
        isos = [day.isoformat() for day in dates]
        summaries = backend.get_cell_summaries(sorted(targets), isos)
        self.moved = {
            name
            for (name, _day), summary in summaries.items()
            if summary[4] is not None and summary[4] != targets[name].package
        }
        for name in sorted(self.moved):
            if migrate:
                backend.migrate_category(name, targets[name].package)
        checked = sorted(set(targets) - self.moved)
        self.damaged: dict[tuple[str, str], str] = backend.check_results(checked, isos)
        for key in self.damaged:
            if migrate:
                backend.forget_result(*key)
        if self.moved or self.damaged:
            summaries = {
                key: summary
                for key, summary in summaries.items()
                if key[0] not in self.moved and key not in self.damaged
            }
        self.summaries: dict[tuple[str, str], CellSummary] = summaries
        self.records: dict[tuple[str, str], CellRecord | None] = {}
        self._loaded: set[str] = set()

    def full_record(self, name: str, day: date) -> CellRecord | None:
        key = (name, day.isoformat())
        if key not in self.summaries:
            return None
        if name not in self._loaded:
            self._loaded.add(name)
            self.records.update(self.backend.get_cells([name], [d.isoformat() for d in self.dates]))
        return self.records.get(key)

    def refresh(self, name: str, day: date) -> None:
        """Read one cell again (another builder may have changed it since the plan): its
        next decision sees the record as it is now."""
        iso = day.isoformat()
        record = self.backend.get_cell(name, iso)
        if record is None:
            self.summaries.pop((name, iso), None)
        else:
            self.summaries[(name, iso)] = summary_of(record)
        if record is not None or name in self._loaded:
            self.records[(name, iso)] = record

    def record(self, name: str, day: date) -> CellRecord | None:
        """Any cell's record; one before the plan's dates (``--from``) is checked for damage
        when first read, and a damaged one reads as no record."""
        if day >= self.dates[0]:
            return self.full_record(name, day)
        key = (name, day.isoformat())
        if key not in self.records:
            damaged = self.backend.check_results([name], [key[1]])
            if damaged:
                self.damaged.update(damaged)
                self.records[key] = None
            else:
                self.records[key] = self.backend.get_cell(name, day.isoformat())
        return self.records.get(key)


class Scheduler:
    """Decides and runs the cells of one build request in a :class:`~btbuild.session.Session`."""

    def __init__(
        self,
        session: Any,
        request: BuildRequest,
        *,
        equivalent: Callable[[Target, CellRecord, CellInputs], Any] | None = None,
        on_progress: Callable[[CellReport], None] | None = None,
        after_run: Callable[[list[Target]], None] | None = None,
        on_wait: Callable[[str], None] | None = None,
    ):
        self.session = session
        self.request = request
        self.workspace = session.workspace
        self.graph = session.graph
        self.equivalent = equivalent or (lambda target, record, inputs: None)
        self._progress = on_progress
        # called once after a real build with the targets that committed new code's results
        # (the sim optimizer registers their SimHashes so a later cosmetic edit can be proven)
        self.after_run = after_run or (lambda targets: None)
        if request.jobs < 1:
            raise UsageError(f"--jobs must be at least 1, got {request.jobs}")
        start = request.start or self.workspace.start_date
        if start > request.end and request.start is None:
            raise UsageError(
                f"--date {request.end.isoformat()} is before [workspace] start_date {start.isoformat()}"
            )
        if start > request.end:
            raise UsageError(
                f"--from {start.isoformat()} is after --date {request.end.isoformat()}"
            )
        self.dates = date_range(start, request.end)
        self.matched = matched = session.match(request.patterns)
        labels = self.graph.closure(matched)
        self.order = [label for label in self.graph.order if label in labels]
        self.targets = {label: self.graph.targets[label] for label in self.order}
        self.by_name = {target.name: target for target in self.targets.values()}
        self.hashes = session.hashes
        self.sources = session.plugins.root_sources()
        self.index = RootIndex.build({n: self.sources[n] for n in self._used_sources()}, self.dates)
        self.backend = session.backend
        self.run_id = uuid.uuid4().hex[:12]
        self._retried: list[GroupTask] = []  # tasks re-run after their worker process died
        self._why: dict[tuple[str, date], str] = {}  # runnable cells: why a change was not proven
        if hasattr(self.equivalent, "bind"):  # the sim judge: replay range, adoptions to recheck
            self.equivalent.bind(self)
        self.cache, self.planner = self._plan()
        self.passes = self.planner.passes
        self.notice = on_wait or (lambda line: None)
        self.waiter = LeaseWaiter(
            self.backend, {t.name: t.label for t in self.targets.values()}, self.notice
        )

    def _plan(self) -> tuple[StorageCache, Planner]:
        """A fresh view of the cache and a planner over it (again when a round re-plans)."""
        cache = StorageCache(
            self.backend, self.by_name, self.dates, migrate=not self.request.dry_run
        )
        planner = Planner(
            self.workspace,
            self.graph,
            list(self.targets.values()),
            self.hashes,
            self.index,
            self.dates,
            cache,
            force=frozenset(
                target.name
                for label, target in self.targets.items()
                if self.request.force_deps or (self.request.force and label in self.matched)
            ),
            retry_dead=self.request.retry_dead,
            dry_run=self.request.dry_run,
            equivalent=self.equivalent,
        )
        judge: Any = self.equivalent
        if hasattr(judge, "bind"):  # the sim judge: earlier adoptions to re-examine
            planner.recheck = judge.recheck
            planner.recheck_verdict = judge.recheck_verdict
        return cache, planner

    def _used_sources(self) -> list[str]:
        return sorted({source for target in self.targets.values() for source in target.all_roots})

    # -- running ------------------------------------------------------------------------

    def run(
        self, executor: Callable[[], AbstractContextManager[Submit]] | None = None
    ) -> BuildReport:
        """Decide and run every cell. ``executor`` opens a ``submit(group) -> future`` for
        remote workers (Pub/Sub); without it groups run inline, or in a local process pool
        with ``--jobs N``."""
        try:
            return self._run(executor)
        finally:
            gc.unfreeze()

    def _run(self, executor: Callable[[], AbstractContextManager[Submit]] | None) -> BuildReport:
        """Rounds: a cell whose commit found a dep moved (another builder committed it since
        the plan) is planned again, with every cell, from the cache as it is then."""
        report = self._round(executor)
        for _ in range(MAX_REPLANS):
            moved = [cell for cell in report.cells if cell.reason == DEPS_MOVED]
            if self.request.dry_run or not moved:
                break
            self.notice(
                f"btbuild: {len(moved)} cells were computed from results another builder "
                "has changed since: planning them again"
            )
            self._progress = None  # the bar counted every cell once already
            self.cache, self.planner = self._plan()
            report = merge_rounds(report, self._round(executor))
        self._after_run(report)
        return report

    def _round(self, executor: Callable[[], AbstractContextManager[Submit]] | None) -> BuildReport:
        report = BuildReport(dry_run=self.request.dry_run)
        groups = [(day, build_pass) for day in self.dates for build_pass in self.passes]
        if self.request.dry_run or (executor is None and self.request.jobs == 1):
            for group in groups:
                tasks = self._decide_group(group, report)
                if tasks and not self.request.dry_run:
                    tasks = self._revive_expired(tasks, report)
                while not self.request.dry_run and (tasks or self.waiter.holds(group)):
                    if tasks:
                        self._finish(group, run_group(self._inline_env(), tasks), report)
                    tasks = None
                    if self.waiter.holds(group):  # another builder has some: wait, decide again
                        tasks = self._decide_again(group, self.waiter.next_free(group), report)
            if "_env" in self.__dict__:  # cells that ran were reported after their group's others
                report.cells.sort(key=lambda cell: (cell.date, cell.build_pass, cell.label))
        else:
            with (executor or self._local_pool)() as submit:
                self.dispatch(groups, report, submit)
            report.cells.sort(key=lambda cell: (cell.date, cell.build_pass, cell.label))
        return report

    def _finish(
        self, group: tuple[date, int], outcomes: list[CellOutcome], report: BuildReport
    ) -> None:
        """Apply a group's outcomes; cells another builder holds are parked to be waited for
        (unless ``--no-wait``: then they are reported blocked)."""
        leased = [o for o in outcomes if self.request.wait and is_leased_elsewhere(o)]
        self._apply([o for o in outcomes if o not in leased], report)
        if leased:
            self.waiter.park(group, leased)

    def _decide_again(
        self, group: tuple[date, int], names: list[str], report: BuildReport
    ) -> GroupTask | None:
        """Decide cells of ``group`` again from their records as they are now."""
        for name in names:
            self.cache.refresh(name, group[0])
        return self._decide_group(group, report, only=set(names))

    @contextmanager
    def _local_pool(self) -> Iterator[Submit]:
        """``--jobs N``: N local worker processes. A worker that dies (``os._exit`` in
        calculation code, a crash, the OOM killer) breaks the pool: a new one takes the next
        tasks (see :meth:`dispatch` for the tasks that were out)."""
        pools: list[ProcessPoolExecutor] = []

        def fresh(workers: int) -> ProcessPoolExecutor:
            pool = ProcessPoolExecutor(
                max_workers=workers,
                mp_context=get_context("spawn"),
                initializer=start_worker,  # watches this process, then runs _init_worker
                initargs=(
                    os.getpid(),
                    f"{__name__}:_init_worker",
                    str(self.workspace.root),
                    self.session.product_lines,
                ),
            )
            pools.append(pool)
            return pool

        main = [fresh(self.request.jobs)]

        def submit(group: GroupTask) -> Future[list[CellOutcome]]:
            if any(seen is group for seen in self._retried):  # alone, in its own process
                return fresh(1).submit(_work, group)
            try:
                return main[0].submit(_work, group)
            except BrokenExecutor:
                main[0] = fresh(self.request.jobs)
                return main[0].submit(_work, group)

        try:
            yield submit
        finally:
            for pool in pools:
                pool.shutdown(wait=True, cancel_futures=True)

    def _after_run(self, report: BuildReport) -> None:
        if self.request.dry_run:
            return
        ran = {cell.label for cell in report.cells if cell.status == RAN}
        if ran:
            self.after_run([self.targets[label] for label in self.order if label in ran])

    def _decide_group(
        self, group: tuple[date, int], report: BuildReport, only: set[str] | None = None
    ) -> GroupTask | None:
        # Deciding allocates hundreds of thousands of small, long-lived, acyclic objects
        # (states, report rows) that the cyclic GC would rescan again and again (measured: a
        # third of a no-op build). They are moved out of its sight once made; run() gives
        # them back when the build ends.
        try:
            return self._decide_group_now(group, report, only)
        finally:
            gc.freeze()

    def _decide_group_now(
        self, group: tuple[date, int], report: BuildReport, only: set[str] | None = None
    ) -> GroupTask | None:
        day, build_pass = group
        tasks = []
        planner = self.planner
        for target in planner.by_pass[build_pass]:
            if only is not None and target.name not in only:
                continue
            decision, task = planner.settle(target, day)
            if decision.reason == "cosmetic" and not self.request.dry_run:
                self._record_cosmetic(
                    target, day, self.cache.full_record(target.name, day), decision
                )
            if task is None:
                self._report(
                    report, target, day, decision.status, decision.reason, decision.detail or None
                )
            elif self.request.dry_run:
                self._report(
                    report, target, day, RUNNABLE, decision.reason, decision.detail or None
                )
            else:
                if decision.detail:
                    self._why[(target.name, day)] = decision.detail
                tasks.append(task)
        if not tasks:
            return None
        return GroupTask(day=day, build_pass=build_pass, cells=tuple(tasks), run_id=self.run_id)

    def _inline_env(self) -> Environment:
        """An environment running cells in this process (inline builds, revivals)."""
        env = self.__dict__.get("_env")
        if env is None:
            env = self.__dict__["_env"] = Environment(
                self.workspace, self.session.plugins, self.backend, static_hashes(self.session)
            )
        return env

    def _revive_expired(self, tasks: GroupTask, report: BuildReport) -> GroupTask | None:
        """Recompute, in this process and first, the expired results (``btbuild gc``) the
        group's cells read, then decide those cells again (see btbuild/execution/retention.py)."""
        from btbuild.execution.retention import revive_expired

        return revive_expired(self, tasks, report)

    def _record_cosmetic(
        self, target: Target, day: date, record: CellRecord | None, decision: Decision
    ) -> None:
        """Adopt the new code hashes on a cosmetic skip, so the next build is plainly up to date."""
        if record is None:
            return
        static = self.hashes[target.name].static
        current, code_hash = self.planner.target_inputs(target)
        components = {**record.components, **current, "static": static}
        inputs = CellInputs(
            static, components, record.root_fingerprints, record.dep_results, code_hash
        )
        self.backend.put_cell_status(
            target.name,
            day.isoformat(),
            COMMITTED,
            composite_hash=inputs.key,
            components=components,
            code_hash=inputs.code_hash,
            sim_hash=decision.sim_hash,
        )
        old = record.code_hash or ""
        self.backend.record_equivalence(
            target.name, old, inputs.code_hash, decision.sim_hash or "", day.isoformat()
        )

    def _apply(self, outcomes: list[CellOutcome], report: BuildReport) -> None:
        for outcome in outcomes:
            target = self.by_name[outcome.name]
            self.planner.record_outcome(
                outcome.name, outcome.day, outcome.status, outcome.reason, outcome.result_hash
            )
            self._report(
                report,
                target,
                outcome.day,
                outcome.status,
                outcome.reason,
                outcome.error or self._why.get((outcome.name, outcome.day)),
                items=outcome.items,
            )

    def _report(
        self,
        report: BuildReport,
        target: Target,
        day: date,
        status: str,
        reason: str,
        detail: str | None = None,
        *,
        items: int = 0,
    ) -> None:
        cell = CellReport(
            target.label, day, status, reason, self.graph.passes[target.label], detail, items
        )
        report.cells.append(cell)
        if self._progress is not None:
            self._progress(cell)

    def dispatch(self, groups: list[tuple[date, int]], report: BuildReport, submit: Submit) -> None:
        """Decide each group once everything it may depend on is final and ``submit`` its
        runnable cells; ``submit`` returns a future of their outcomes (a local process pool,
        or Pub/Sub workers). A group depends on the same date's previous pass and, when its
        pass looks back in time, on the previous date's same pass. With ``[execution]
        user_shards`` > 1 a group's per_user cells run as that many parts, then a combine.
        A group with cells parked for another builder is done once they are decided again."""
        position = {day: index for index, day in enumerate(self.dates)}
        done: set[tuple[date, int]] = set()
        pending = list(groups)
        running: dict[Future[list[CellOutcome]], tuple[tuple[date, int], GroupTask]] = {}
        flights: dict[tuple[date, int], _Flight] = {}

        def launch(key: tuple[date, int], task: GroupTask) -> None:
            running[submit(task)] = (key, task)
            flights[key].outstanding += 1

        def start(key: tuple[date, int], tasks: GroupTask | None) -> None:
            if tasks is not None:  # expired results its cells read are recomputed first
                tasks = self._revive_expired(tasks, report)
            if tasks is not None:
                flights.setdefault(key, _Flight())
                for part in self._split(tasks):
                    launch(key, part)
            elif key not in flights and not self.waiter.holds(key):
                done.add(key)

        def land(key: tuple[date, int], task: GroupTask, outcomes: list[CellOutcome]) -> None:
            flight = flights[key]
            flight.outstanding -= 1
            if task.shards > 1 and not task.combine:
                flight.parts.append(outcomes)
                if len(flight.parts) == task.shards:
                    combines, failed = self._settle_parts(task, flight.parts)
                    flight.outcomes.extend(failed)
                    for combine in combines:
                        launch(key, combine)
            else:
                flight.outcomes.extend(outcomes)
            if flight.outstanding == 0:
                del flights[key]
                self._finish(key, flight.outcomes, report)
                start(key, None)

        while pending or running or self.waiter:
            still = []
            for group in pending:
                if all(need in done for need in self._needs(group, position)):
                    start(group, self._decide_group(group, report))
                else:
                    still.append(group)
            pending = still
            for key, names in self.waiter.free():
                start(key, self._decide_again(key, names, report))
            if not running:
                if self.waiter:
                    self.waiter.sleep()
                continue  # everything decided was skipped: the next sweep makes progress
            timeout = self.waiter.poll if self.waiter else None
            finished, _ = wait(running, timeout=timeout, return_when=FIRST_COMPLETED)
            for future in finished:
                key, task = running.pop(future)
                outcomes = self._outcomes_of(future, task, self._retried)
                if outcomes is None:  # its worker died: once more, alone (cell by cell)
                    flights[key].outstanding -= 1
                    for again in self._retries(task, self._retried):
                        launch(key, again)
                    continue
                land(key, task, outcomes)

    def _needs(
        self, group: tuple[date, int], position: Mapping[date, int]
    ) -> list[tuple[date, int]]:
        """The groups that must be done before ``group`` is decided."""
        day, build_pass = group
        needs = []
        if build_pass != self.passes[0]:
            needs.append((day, self.passes[self.passes.index(build_pass) - 1]))
        if self.planner.looks_back[build_pass] and position[day] > 0:
            needs.append((self.dates[position[day] - 1], build_pass))
        return needs

    @staticmethod
    def _outcomes_of(
        future: Future[list[CellOutcome]], task: GroupTask, retried: list[GroupTask]
    ) -> list[CellOutcome] | None:
        """The outcomes of a finished task; None when its worker process died and it gets
        another try (a task that was only queued next to the one that killed its worker must
        not fail for it). A retried task whose process dies again fails, cell by cell."""
        try:
            return future.result()
        except BrokenExecutor:
            if not any(seen is task for seen in retried):
                return None
        return [
            CellOutcome(
                cell.name,
                cell.day,
                FAILED,
                cell.reason,
                error=(
                    f"{cell.name} on {cell.day.isoformat()}: the worker process running it died "
                    "(os._exit, a crash or the OOM killer)"
                ),
            )
            for cell in task.cells
        ]

    @staticmethod
    def _retries(task: GroupTask, retried: list[GroupTask]) -> list[GroupTask]:
        """A task whose worker died, as retries: one per cell (each in a process of its own,
        so only the cell that kills its process fails), or whole for a part of a sharded
        cell (its parts are counted)."""
        alone = (
            [replace(task, cells=(cell,)) for cell in task.cells]
            if task.shards == 1 and not task.combine and len(task.cells) > 1
            else [task]
        )
        retried.extend(alone)
        return alone

    def _split(self, tasks: GroupTask) -> list[GroupTask]:
        """The group as submitted: whole, or its per_user cells as ``user_shards`` parts."""
        shards = self.workspace.execution.user_shards
        per_user = tuple(cell for cell in tasks.cells if self.by_name[cell.name].kind == "per_user")
        if shards == 1 or not per_user:
            return [tasks]
        rest = tuple(cell for cell in tasks.cells if cell not in per_user)
        parts = [
            replace(tasks, cells=per_user, shard=shard, shards=shards) for shard in range(shards)
        ]
        return parts + ([replace(tasks, cells=rest)] if rest else [])

    def _settle_parts(
        self, task: GroupTask, parts: list[list[CellOutcome]]
    ) -> tuple[list[GroupTask], list[CellOutcome]]:
        """Every part of a sharded group is back: each cell whose parts all committed gets a
        combine task (cells combine in parallel); a cell with a failed part fails (its record
        says so, for the next build's retry or dead letter) and one with a leased part is
        blocked."""
        ok: list[CellTask] = []
        failed: list[CellOutcome] = []
        for cell in task.cells:
            outcomes = [outcome for part in parts for outcome in part if outcome.name == cell.name]
            bad = next((o for o in outcomes if o.status not in (RAN, SKIPPED)), None)
            if bad is None:
                ok.append(cell)
                continue
            failed.append(bad)
            if bad.status in (FAILED, DEAD_LETTER):
                self.backend.put_cell_status(
                    cell.name,
                    cell.day.isoformat(),
                    bad.status,
                    last_error=bad.error,
                    attempt_key=cell.key,
                )
        return [replace(task, cells=(cell,), shard=0, combine=True) for cell in ok], failed


_WORKER: dict[str, Any] = {}


def _init_worker(root: str, product_lines: tuple[str, ...]) -> None:
    from btbuild.execution.guard import install_interrupt_flag, stdout_to_stderr_fd
    from btbuild.session import Session

    install_interrupt_flag()
    stdout_to_stderr_fd()
    session = Session(Path(root), product_lines=product_lines)
    _WORKER["env"] = Environment(
        session.workspace, session.plugins, session.backend, static_hashes(session)
    )


def _work(group: GroupTask) -> list[CellOutcome]:
    return run_group(_WORKER["env"], group)
