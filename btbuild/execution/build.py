"""``btbuild build``: catch up every matched target (and its deps) over a range of dates.

The scheduler walks (date, pass) groups. A group is decided (by the analysis stage's
:class:`~btbuild.analysis.planner.Planner`, reading the cache through :class:`StorageCache`)
when everything it can depend on is final, so every decision sees the real result hashes of
its deps (exact early cutoff).
Runnable cells of a group are run together (one shared user stream) inline or, with
``--jobs N``, in a pool of N processes; groups of different dates run in parallel unless a
pass looks back in time (historical targets, deps on targets with a sparser schedule), in
which case that pass runs in date order (see :mod:`btbuild.execution.dispatch`).
"""

from __future__ import annotations

import gc
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import date
from typing import Any

from btbuild.analysis.cells import RAN, RUNNABLE, CellInputs, Decision, date_range
from btbuild.analysis.planner import Planner
from btbuild.errors import UsageError
from btbuild.execution.backoff import retry_due
from btbuild.execution.commits import flush_alerts
from btbuild.execution.dispatch import Dispatch, Submit
from btbuild.execution.executors import Executor, ExecutorRun
from btbuild.execution.fusion import Fusion
from btbuild.execution.local import LocalExecutor
from btbuild.execution.report import SUMMARY_KEYS, BuildReport, BuildRequest, CellReport
from btbuild.execution.setup import ExecutionContext, ExecutionSource, context_of
from btbuild.execution.storage_cache import CacheReads, StorageCache
from btbuild.execution.tasks import CellOutcome, CellTask, GroupTask
from btbuild.execution.waiting import LeaseWaiter, is_leased_elsewhere, merge_rounds, moved_cells
from btbuild.plugins.rootindex import RootIndex
from btbuild.storage.records import COMMITTED, CellRecord
from btbuild.vocabulary import Reason, Status
from btbuild.workspace.model import Target, Workspace

ADOPTION_TRIES = 3  # a cosmetic adoption re-read and re-decided this often, then it re-runs

__all__ = [
    "MAX_REPLANS",
    "SUMMARY_KEYS",
    "BuildReport",
    "BuildRequest",
    "CellReport",
    "Scheduler",
    "StorageCache",
    "Submit",
]

MAX_REPLANS = 3  # rounds after the first when deps moved under this build (then: blocked)


def build_dates(request: BuildRequest, workspace: Workspace) -> list[date]:
    """The request's dates (usage errors for --jobs, --from and --date)."""
    if request.jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {request.jobs}")
    start = request.start or workspace.start_date
    if start > request.end and request.start is None:
        raise UsageError(
            f"--date {request.end.isoformat()} is before [workspace] start_date {start.isoformat()}"
        )
    if start > request.end:
        raise UsageError(f"--from {start.isoformat()} is after --date {request.end.isoformat()}")
    return date_range(start, request.end)


class Scheduler:
    """Decides the cells of one build request and runs them through an executor.

    ``source`` is the :class:`~btbuild.execution.setup.ExecutionContext` of the workspace,
    or what makes one (a :class:`~btbuild.session.Session`: its context is made once the
    patterns matched, so a bad pattern is reported before anything is hashed)."""

    def __init__(
        self,
        source: ExecutionContext | ExecutionSource,
        request: BuildRequest,
        *,
        equivalent: Callable[[Target, CellRecord, CellInputs], Any] | None = None,
        on_progress: Callable[[CellReport], None] | None = None,
        after_run: Callable[[list[Target]], None] | None = None,
        on_wait: Callable[[str], None] | None = None,
    ):
        self.request = request
        self.workspace = source.workspace
        self.equivalent = equivalent or (lambda target, record, inputs: None)
        self._progress = on_progress
        # called once after a real build with the targets that committed new code's results
        # (the sim optimizer registers their SimHashes so a later cosmetic edit can be proven)
        self.after_run = after_run or (lambda targets: None)
        self.dates = build_dates(request, self.workspace)
        self.matched = matched = source.match(request.patterns)
        self.graph = source.graph
        labels = self.graph.closure(matched)
        self.order = [label for label in self.graph.order if label in labels]
        self.targets = {label: self.graph.targets[label] for label in self.order}
        self.by_name = {target.name: target for target in self.targets.values()}
        # the first plan's cache read is sent now, the server works while the code is hashed
        self._reads = CacheReads(source.backend, list(self.by_name), self.dates, request.dry_run)
        self.context = context = context_of(source)
        self.hashes = context.hashes
        self.sources = context.plugins.root_sources()
        self.backend = context.backend
        self.run_id = uuid.uuid4().hex[:12]
        self._retried: list[GroupTask] = []  # tasks re-run after their worker process died
        self._why: dict[tuple[str, date], str] = {}  # runnable cells: why a change was not proven
        self.notice = on_wait or (lambda line: None)
        self.waiter = LeaseWaiter(
            self.backend, {t.name: t.label for t in self.targets.values()}, self.notice
        )
        self._planned = False  # plan() reads the root index and the cache

    def plan(self) -> Scheduler:
        """Read what deciding needs: the root index of the dates and the cache (its summaries
        and integrity). Changes nothing; :meth:`run` plans first unless this was called."""
        if self._planned:
            return self
        self.index = RootIndex.build({n: self.sources[n] for n in self._used_sources()}, self.dates)
        if hasattr(self.equivalent, "bind"):  # the sim judge: replay range, adoptions to recheck
            self.equivalent.bind(self)
        self.cache, self.planner = self._plan()
        self.passes = self.planner.passes
        self._planned = True
        return self

    def repair(self) -> list[str]:
        """The explicit clean-up step of a real build, before any cell runs (see
        :meth:`StorageCache.repair`: category migrations, damaged results)."""
        return [] if self.request.dry_run else self.cache.repair()

    def _plan(self) -> tuple[StorageCache, Planner]:
        """A fresh view of the cache and a planner over it (again when a round re-plans)."""
        self.fusion = Fusion(self)  # which cells ride along in an earlier pass's stream
        cache = StorageCache(self.backend, self.by_name, self.dates, self._reads)
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
        self, executor: Executor | Callable[[], AbstractContextManager[Submit]] | None = None
    ) -> BuildReport:
        """Decide and run every cell through ``executor`` (default: the local one, inline or
        ``--jobs N`` processes). A plain callable opening a ``submit`` is accepted too."""
        if executor is None:
            executor = LocalExecutor()
        elif not isinstance(executor, Executor):
            executor = _Opener(executor)
        try:
            return self._run(executor)
        finally:
            gc.unfreeze()

    def _run(self, executor: Executor) -> BuildReport:
        """Rounds: a cell whose commit found a dep moved (another builder committed it since
        the plan) is planned again, with every cell, from the cache as it is then."""
        self.plan()
        repairs = self.repair()
        if not self.request.dry_run:  # alerts a killed or failed build left unpublished
            repairs += flush_alerts(self.workspace, self.backend, begun=self._reads.alerts)
        report = self._round(executor)
        for attempt in range(MAX_REPLANS + 1):  # the last: moved cells stay blocked
            moved = moved_cells(self, report)  # deps moved, or skipped from an old read
            if not moved or attempt == MAX_REPLANS:
                break
            self.notice(
                f"btbuild: {len(moved)} cells read inputs that changed since their plan "
                "(another builder's result, re-ingested data): planning them again"
            )
            self._progress = None  # the bar counted every cell once already
            self.index = RootIndex.build(self.index.sources, self.dates)  # root data moved too?
            self.cache, self.planner = self._plan()
            repairs += self.repair()
            report = merge_rounds(report, self._round(executor))
        report.repairs = repairs
        if not self.request.dry_run:  # killed builders' attempts on cells found up to date
            skipped = [
                (self.targets[c.label].name, c.date)
                for c in report.cells
                if c.status == Status.SKIPPED and c.label in self.targets
            ]
            self.cache.end_dead_leases(skipped, time.time())
        self._after_run(report)
        return report

    def _round(self, executor: Executor) -> BuildReport:
        report = BuildReport(dry_run=self.request.dry_run)
        groups = [(day, build_pass) for day in self.dates for build_pass in self.passes]
        run = ExecutorRun(self.context, self.run_id, self.request.jobs, self._retried)
        opened = None if self.request.dry_run else executor.open(run)
        if opened is None:
            self._run_inline(groups, report)
        else:
            with opened as submit:
                self.dispatch(groups, report, submit)
            report.cells.sort(key=lambda cell: (cell.date, cell.build_pass, cell.label))
        return report

    def _run_inline(self, groups: list[tuple[date, int]], report: BuildReport) -> None:
        """Decide and run the groups one by one in this process (or only decide: dry run)."""
        for group in groups:
            tasks = self._decide_group(group, report)
            if tasks and not self.request.dry_run:
                tasks = self._revive_expired(tasks, report)
            while not self.request.dry_run and (tasks or self.waiter.holds(group)):
                if tasks:
                    self._finish(group, self._run_here(tasks), report)
                tasks = None
                if self.waiter.holds(group):  # another builder has some: wait, decide again
                    tasks = self._decide_again(group, self.waiter.next_free(group), report)
        if "_env" in self.__dict__:  # cells that ran were reported after their group's others
            report.cells.sort(key=lambda cell: (cell.date, cell.build_pass, cell.label))

    def _finish(
        self, group: tuple[date, int], outcomes: list[CellOutcome], report: BuildReport
    ) -> None:
        """Apply a group's outcomes; cells another builder holds are parked to be waited for
        (unless ``--no-wait``: then they are reported blocked)."""
        outcomes = self.fusion.settle(outcomes)  # deferred fused cells: decided in their pass
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
            if (only is not None and target.name not in only) or self.fusion.taken_over(
                target.name, day
            ):
                continue
            decision, task = self._settle(target, day)
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
        waiting = self._backing_off(tasks, day)
        if waiting:  # failed before, retry not due yet: decided again once it is
            self.waiter.park_until(group, waiting)
            tasks = [task for task in tasks if task.name not in waiting]
        if not tasks:
            return None
        tasks += self.fusion.extend(day, build_pass, tasks)
        return GroupTask(day=day, build_pass=build_pass, cells=tuple(tasks), run_id=self.run_id)

    def _backing_off(self, tasks: list[CellTask], day: date) -> dict[str, float]:
        """Retries among ``tasks`` whose back-off has not passed yet -> when they are due."""
        first = self.workspace.execution.retry_backoff
        now = time.time()
        due = {}
        for task in tasks:
            if task.reason == Reason.RETRY:
                when = retry_due(self.cache.full_record(task.name, day), task.key, first)
                if when > now:
                    due[task.name] = when
        return due

    def _run_here(self, tasks: GroupTask) -> list[CellOutcome]:
        """Run a group in this process, in one environment made on first use (what runs
        cells is imported here: a no-op build runs none)."""
        from btbuild.execution.runner import Environment, run_group

        if "_env" not in self.__dict__:
            self.__dict__["_env"] = Environment.of(self.context)
        return run_group(self.__dict__["_env"], tasks)

    def _revive_expired(self, tasks: GroupTask, report: BuildReport) -> GroupTask | None:
        """Recompute, in this process and first, the expired results (``btbuild gc``) the
        group's cells read, then decide those cells again (see btbuild/execution/retention.py)."""
        from btbuild.execution.retention import revive_expired

        return revive_expired(self, tasks, report)

    def _settle(self, target: Target, day: date) -> tuple[Decision, CellTask | None]:
        """Decide a cell; a cosmetic skip adopts the new code hashes, or - when another
        builder changed the cell since it was read - reads it again and decides again."""
        for _ in range(ADOPTION_TRIES):
            decision, task = self.planner.settle(target, day)
            if decision.reason != Reason.COSMETIC or self.request.dry_run:
                return decision, task
            if self._record_cosmetic(
                target, day, self.cache.full_record(target.name, day), decision
            ):
                return decision, task
            self.planner.state.pop((target.name, day), None)
            self.cache.refresh(target.name, day)
        # the cell kept moving under the adoption: no verdict holds still long enough, re-run
        self.planner.must_run[(target.name, day)] = Decision(
            RUNNABLE, Reason.CODE_CHANGED, detail="changed by another builder while adopted"
        )
        return self.planner.settle(target, day)

    def _record_cosmetic(
        self, target: Target, day: date, record: CellRecord | None, decision: Decision
    ) -> bool:
        """Adopt the new code hashes on a cosmetic skip, so the next build is plainly up to
        date: a compare-and-set against the record the verdict was reached on. False when
        that record is no longer the cell's (another builder re-committed, adopted, leased
        or expired it since this build read it): the caller decides the cell again."""
        summary = self.cache.summaries.get((target.name, day.isoformat()))
        if (
            record is None
            or record.generation is None
            or summary is None
            or (summary.generation, summary.composite_hash)
            != (record.generation, record.composite_hash)
        ):
            return False  # the plan's summary and the full record are two different reads
        static = self.hashes[target.name].static
        current, code_hash = self.planner.target_inputs(target)
        components = {**record.components, **current, "static": static}
        inputs = CellInputs(
            static, components, record.root_fingerprints, record.dep_results, code_hash
        )
        adopted = self.backend.put_cell_status(
            target.name,
            day.isoformat(),
            COMMITTED,
            expect=(record.generation, record.composite_hash),
            composite_hash=inputs.key,
            components=components,
            code_hash=inputs.code_hash,
            sim_hash=decision.sim_hash,
        )
        if adopted is None:
            return False
        old = record.code_hash or ""
        self.backend.record_equivalence(
            target.name, old, inputs.code_hash, decision.sim_hash or "", day.isoformat()
        )
        return True

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
        or Pub/Sub workers). See :mod:`btbuild.execution.dispatch`."""
        Dispatch(self, groups, report, submit).run()


class _Opener(Executor):
    """An executor given as a plain ``() -> context manager of submit`` callable."""

    name = "given"

    def __init__(self, opener: Callable[[], AbstractContextManager[Submit]]):
        self.opener = opener

    def open(self, run: ExecutorRun) -> AbstractContextManager[Submit]:
        return self.opener()
