"""``btbuild build``: catch up every matched target (and its deps) over a range of dates.

The scheduler walks (date, pass) groups. A group is decided when everything it can depend on
is final, so every decision sees the real result hashes of its deps (exact early cutoff).
Runnable cells of a group are run together (one shared user stream) inline or, with
``--jobs N``, in a pool of N processes; groups of different dates run in parallel unless a
pass looks back in time (historical targets, deps on targets with a sparser schedule), in
which case that pass runs in date order.
"""

from __future__ import annotations

import gc
import json
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from xxhash import xxh3_128_hexdigest

from btbuild.analysis.cells import (
    BLOCKED,
    DEAD_LETTER,
    FAILED,
    IMPOSSIBLE,
    KEY_SCHEME,
    PREVIOUS,
    RAN,
    RUNNABLE,
    SKIPPED,
    CellInputs,
    Decision,
    compare,
    date_range,
    missing_roots,
    only_code_changed,
    reason_for,
    root_fingerprints,
    roots_key_text,
    target_components,
)
from btbuild.errors import UsageError
from btbuild.execution.runner import Environment, run_group
from btbuild.execution.tasks import CellOutcome, CellTask, GroupTask
from btbuild.hashing.digest import hash_json
from btbuild.plugins.rootindex import RootIndex
from btbuild.storage.base import CellSummary
from btbuild.storage.records import COMMITTED, CellRecord
from btbuild.storage.records import DEAD_LETTER as RECORD_DEAD_LETTER
from btbuild.storage.records import FAILED as RECORD_FAILED
from btbuild.storage.records import IMPOSSIBLE as RECORD_IMPOSSIBLE
from btbuild.workspace.model import DAILY, Target

Submit = Callable[[GroupTask], "Future[list[CellOutcome]]"]
SUMMARY_KEYS = ("ran", "skipped", "blocked", "impossible", "failed", "dead_letter")
_UP_TO_DATE = Decision(SKIPPED, "up_to_date")
_NEW = Decision(RUNNABLE, "new")
_EARLY_CUTOFF = Decision(SKIPPED, "early_cutoff")
_NOT_SCHEDULED = Decision(SKIPPED, "not_scheduled")


@dataclass(frozen=True)
class BuildRequest:
    patterns: tuple[str, ...]
    end: date
    start: date | None = None  # --from; default: [workspace] start_date
    dry_run: bool = False
    jobs: int = 1
    force: bool = False


@dataclass(slots=True)
class CellReport:
    label: str
    date: date
    status: str
    reason: str
    build_pass: int = 0
    detail: str | None = None
    items: int = 0
    duration: float = 0.0
    changes: tuple[Any, ...] = ()

    def to_json(self) -> dict[str, Any]:
        row: dict[str, Any] = {"label": self.label, "date": self.date.isoformat(), "status": self.status, "reason": self.reason}
        if self.detail:
            row["detail"] = self.detail
        return row


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
        return not any(cell.status in (FAILED, DEAD_LETTER) for cell in self.cells)

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


@dataclass(slots=True)
class CellState:
    status: str
    reason: str
    result_hash: str | None = None  # of the result a dependent would read
    reran: bool = False  # ran in this build (so an unchanged result means early cutoff)


class Scheduler:
    """Decides and runs the cells of one build request in a :class:`~btbuild.session.Session`."""

    def __init__(self, session: Any, request: BuildRequest, *,
                 equivalent: Callable[[Target, CellRecord, CellInputs], str | None] | None = None,
                 on_progress: Callable[[CellReport], None] | None = None,
                 after_run: Callable[[list[Target]], None] | None = None):
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
        if start > request.end:
            raise UsageError(f"--from {start.isoformat()} is after --date {request.end.isoformat()}")
        self.dates = date_range(start, request.end)
        labels = self.graph.closure(session.match(request.patterns))
        self.order = [label for label in self.graph.order if label in labels]
        self.targets = {label: self.graph.targets[label] for label in self.order}
        self.by_name = {target.name: target for target in self.targets.values()}
        self.hashes = session.hashes
        self.sources = session.plugins.root_sources()
        self.index = RootIndex.build({n: self.sources[n] for n in self._used_sources()}, self.dates)
        self.backend = session.backend
        self.state: dict[tuple[str, date], CellState] = {}
        self._per_target: dict[str, tuple[dict[str, str], str]] = {}
        self._roots_cache: dict[tuple[int, date], tuple[list[str], dict[str, str], str]] = {}
        self._roots_ids: dict[tuple[Any, ...], int] = {}
        self._constants_cache: dict[str, tuple[bool, int, str, list[tuple[str, Target, bool, str]]]] = {}
        self._iso_cache: dict[date, str] = {}
        self.records: dict[tuple[str, str], CellRecord | None] = {}  # full records, read on need
        self._loaded: set[str] = set()
        self._moved: set[str] = set()
        self.summaries = self._read_summaries()
        self.run_id = uuid.uuid4().hex[:12]
        self.passes = sorted({self.graph.passes[label] for label in self.order})
        self.by_pass: dict[int, list[Target]] = {p: [] for p in self.passes}
        for label in self.order:
            self.by_pass[self.graph.passes[label]].append(self.targets[label])
        self.looks_back = {p: any(self._looks_back(t) for label, t in self.targets.items() if self.graph.passes[label] == p)
                           for p in self.passes}

    # -- inputs -------------------------------------------------------------------------

    def _used_sources(self) -> list[str]:
        return sorted({source for target in self.targets.values() for source in target.all_roots})

    def _read_summaries(self) -> dict[tuple[str, str], CellSummary]:
        """What the cache says of every cell of the plan, in a few narrow queries. A target
        that moved to another package is a category migration: what its old package left is
        deleted (not in a dry run, where it is only ignored) and it is built anew."""
        names = sorted(self.by_name)
        summaries = self.backend.get_cell_summaries(names, [day.isoformat() for day in self.dates])
        moved = {
            name for (name, _day), summary in summaries.items()
            if summary[4] is not None and summary[4] != self.by_name[name].package
        }
        for name in sorted(moved):
            if not self.request.dry_run:
                self.backend.migrate_category(name, self.by_name[name].package)
        self._moved = moved
        if not moved:
            return summaries
        return {key: summary for key, summary in summaries.items() if key[0] not in moved}

    def full_record(self, name: str, day: date) -> CellRecord | None:
        """The whole cache record of a cell of the plan (read per target, on first need:
        only cells whose inputs changed, failed cells and explain need more than a summary)."""
        key = (name, day.isoformat())
        if key not in self.summaries or name in self._moved:
            return None
        if name not in self._loaded:
            self._loaded.add(name)
            self.records.update(self.backend.get_cells([name], [d.isoformat() for d in self.dates]))
        return self.records.get(key)

    def _looks_back(self, target: Target) -> bool:
        if target.historical:
            return True
        return any(self.graph.targets[label].schedule != target.schedule for label in target.deps)

    def record(self, name: str, day: date) -> CellRecord | None:
        """A cell's record, inside the build range or before it (``--from``)."""
        if day >= self.dates[0]:
            return self.full_record(name, day)
        key = (name, day.isoformat())
        if key not in self.records:
            self.records[key] = self.backend.get_cell(name, day.isoformat())
        return self.records.get(key)

    def _outside_state(self, target: Target, day: date) -> CellState:
        """The state of a cell before the build range (--from): what the cache says."""
        if not target.schedule.is_due(day):
            return CellState(SKIPPED, "not_scheduled")
        if missing_roots(target, day, self.index.available):
            return CellState(IMPOSSIBLE, "no_data")
        record = self.record(target.name, day)
        if record is None:
            return CellState(BLOCKED, "not_built")
        if record.status == RECORD_IMPOSSIBLE:
            return CellState(IMPOSSIBLE, "upstream")
        if record.has_result:
            return CellState(SKIPPED, "up_to_date", record.result_hash)
        return CellState(FAILED, record.status)

    def cell_state(self, target: Target, day: date) -> CellState:
        state = self.state.get((target.name, day))
        if state is None:
            state = self._outside_state(target, day)
        return state

    def as_of(self, target: Target, day: date) -> date | None:
        """The date of ``target``'s cell a dependent reads on ``day``: the latest due date."""
        if target.schedule is DAILY:
            return day if day >= self.workspace.start_date else None
        limit = self.workspace.start_date
        probe = day
        while probe >= limit:
            if target.schedule.is_due(probe):
                return probe
            probe -= timedelta(days=1)
        return None

    # -- decisions ----------------------------------------------------------------------

    def decide(self, target: Target, day: date) -> tuple[Decision, CellTask | None]:
        decision, task, _inputs = self.explain(target, day, details=False)
        return decision, task

    def explain(self, target: Target, day: date, *, details: bool = True) -> tuple[Decision, CellTask | None, CellInputs | None]:
        """The decision for one cell, its task if it runs, and the inputs it compared
        (without ``details``, an up-to-date cell returns no inputs: the no-op fast path)."""
        daily, roots_signature, static, deps = self._constants(target)
        if not daily and not target.schedule.is_due(day):
            return _NOT_SCHEDULED, None, None
        roots = self._roots_cache.get((roots_signature, day))
        if roots is None:
            roots = self._roots_on(target, day, roots_signature)
        missing, fingerprints, roots_text = roots
        if missing:
            return Decision(IMPOSSIBLE, "no_data", detail=f"no {', '.join(missing)} data"), None, None
        dep_results: dict[str, str] = {}
        dep_dates: dict[str, date] = {}
        key_lines = [KEY_SCHEME, static, roots_text]
        deps_reran = False
        start_date = self.workspace.start_date
        for label, dep, dep_daily, prefix in deps:  # sorted by label, as the key wants
            dep_day = (day if day >= start_date else None) if dep_daily else self.as_of(dep, day)
            if dep_day is None:
                return Decision(IMPOSSIBLE, "upstream", detail=f"{label} has no scheduled date on or before {day.isoformat()}"), None, None
            state = self.state.get((dep.name, dep_day)) or self._outside_state(dep, dep_day)
            if state.status == IMPOSSIBLE:
                return Decision(IMPOSSIBLE, "upstream", detail=f"{label} is impossible on {dep_day.isoformat()}"), None, None
            if state.status == RUNNABLE:
                dep_results[label] = "?"  # dry run: the dep will run, its result is unknown
            elif state.result_hash is None:
                return Decision(BLOCKED, "waiting_for_deps", detail=f"{label} on {dep_day.isoformat()} is {state.status}"), None, None
            else:
                dep_results[label] = state.result_hash
                deps_reran = deps_reran or state.reran
            key_lines.append(prefix + dep_results[label])
            dep_dates[dep.name] = dep_day
        previous_date = None
        if target.historical:
            found = self.previous(target, day)
            if isinstance(found, Decision):
                return found, None, None
            if found is not None:
                previous_date, previous_hash = found
                dep_results[PREVIOUS] = previous_hash
                key_lines.append(f"d:{PREVIOUS}={previous_hash}")  # "@" sorts after "//": still sorted
        hashes = self.hashes[target.name]
        key = xxh3_128_hexdigest("\n".join(key_lines).encode())  # == input_key(...), inlined: the hot path
        if not details and not self.request.force:
            iso = self._iso_cache.get(day) or self._iso(day)
            summary = self.summaries.get((target.name, iso))
            if summary is not None and summary[1] == key and summary[3] is not None and summary[0] != RECORD_DEAD_LETTER:
                return (_EARLY_CUTOFF if deps_reran else _UP_TO_DATE), None, None
        components, code_hash = self._target_inputs(target)
        inputs = CellInputs(
            static=hashes.static,
            components=components,
            root_fingerprints=fingerprints,
            dep_results=dep_results,
            code_hash=code_hash,
        )
        inputs.__dict__["key"] = key  # already computed (CellInputs.key is a cached property)
        decision, sim_hash = self._compare(target, day, inputs, deps_reran)
        if not decision.runs:
            return decision, None, inputs
        task = CellTask(
            name=target.name,
            day=day,
            reason=decision.reason,
            build_pass=self.graph.passes[target.label],
            key=key,
            static=inputs.static,
            code_hash=inputs.code_hash,
            components=dict(inputs.components),
            root_fingerprints=dict(inputs.root_fingerprints),
            dep_results=dict(inputs.dep_results),
            dep_dates=dep_dates,
            previous_date=previous_date,
            sim_hash=sim_hash,
        )
        return decision, task, inputs

    def _constants(self, target: Target) -> tuple[bool, int, str, list[tuple[str, Target, bool, str]]]:
        """What the planner needs of a target on every date, computed once: whether it is
        daily, an id of its roots declaration (targets sharing it share root fingerprints),
        its static hash and its deps as (label, dep, dep is daily, input-key line prefix),
        sorted by label."""
        constants = self._constants_cache.get(target.name)
        if constants is None:
            signature = (target.roots, target.optional_roots, target.lookback)
            roots_id = self._roots_ids.setdefault(signature, len(self._roots_ids))
            deps = [(label, self.graph.targets[label], self.graph.targets[label].schedule is DAILY, f"d:{label}=")
                    for label in sorted(target.deps)]
            constants = (target.schedule is DAILY, roots_id, self.hashes[target.name].static, deps)
            self._constants_cache[target.name] = constants
        return constants

    def _iso(self, day: date) -> str:
        iso = self._iso_cache.get(day)
        if iso is None:
            iso = self._iso_cache[day] = day.isoformat()
        return iso

    def _roots_on(self, target: Target, day: date, roots_id: int) -> tuple[list[str], dict[str, str], str]:
        """Missing mandatory roots, the root fingerprints of a target's cell and their text
        for the input key, shared by every target with the same roots declaration."""
        fingerprints = root_fingerprints(target, day, self.index.fingerprint)
        roots = (missing_roots(target, day, self.index.available), fingerprints, roots_key_text(fingerprints))
        self._roots_cache[(roots_id, day)] = roots
        return roots

    def _target_inputs(self, target: Target) -> tuple[dict[str, str], str]:
        """A target's hash components and code key, computed once per build."""
        cached = self._per_target.get(target.name)
        if cached is None:
            hashes = self.hashes[target.name]
            cached = (target_components(hashes), hash_json([hashes.code, hashes.layers]))
            self._per_target[target.name] = cached
        return cached

    def previous(self, target: Target, day: date) -> tuple[date, str] | Decision | None:
        """A historical cell's previous result: the latest earlier cell that has one."""
        probe = day - timedelta(days=1)
        while probe >= self.workspace.start_date:
            state = self.cell_state(target, probe)
            if state.status in (SKIPPED, RAN) and state.result_hash is not None:
                return probe, state.result_hash
            if state.status == RUNNABLE:
                return probe, "?"
            if state.status not in (IMPOSSIBLE,) and not (state.status == SKIPPED and state.reason == "not_scheduled"):
                return Decision(BLOCKED, "waiting_for_previous_day", detail=f"{target.label} on {probe.isoformat()} is {state.status}")
            probe -= timedelta(days=1)
        return None

    def _compare(self, target: Target, day: date, inputs: CellInputs, deps_reran: bool) -> tuple[Decision, str | None]:
        if self.request.force:
            return Decision(RUNNABLE, "forced"), None
        summary = self.summaries.get((target.name, day.isoformat()))
        if summary is None:
            return _NEW, None
        status, composite_hash, _result_hash, generation, _category = summary
        if status != RECORD_DEAD_LETTER and generation is not None and composite_hash == inputs.key:
            return (_EARLY_CUTOFF if deps_reran else _UP_TO_DATE), None  # the no-op fast path
        record = self.full_record(target.name, day)
        if record is None:  # unreadable in full: a miss
            return _NEW, None
        if record.status == RECORD_DEAD_LETTER:
            return Decision(DEAD_LETTER, "max_attempts", detail=record.last_error or ""), None
        if not record.has_result:
            if record.status == RECORD_FAILED:
                return Decision(RUNNABLE, "retry", detail=record.last_error or ""), None
            return _NEW, None
        changes = compare(record.components, record.root_fingerprints, record.dep_results, inputs)
        if not changes:
            return Decision(SKIPPED, "early_cutoff" if deps_reran else "up_to_date"), None
        if "?" not in inputs.dep_results.values() and only_code_changed(changes):
            sim_hash = self.equivalent(target, record, inputs)
            if sim_hash is not None:
                return Decision(SKIPPED, "cosmetic", tuple(changes), sim_hash=sim_hash), sim_hash
        if record.status == RECORD_FAILED:
            return Decision(RUNNABLE, "retry", tuple(changes), detail=record.last_error or ""), None
        return Decision(RUNNABLE, reason_for(changes), tuple(changes)), None

    # -- running ------------------------------------------------------------------------

    def run(self, executor: Callable[[], AbstractContextManager[Submit]] | None = None) -> BuildReport:
        """Decide and run every cell. ``executor`` opens a ``submit(group) -> future`` for
        remote workers (Pub/Sub); without it groups run inline, or in a local process pool
        with ``--jobs N``."""
        try:
            return self._run(executor)
        finally:
            gc.unfreeze()

    def _run(self, executor: Callable[[], AbstractContextManager[Submit]] | None) -> BuildReport:
        report = BuildReport(dry_run=self.request.dry_run)
        groups = [(day, build_pass) for day in self.dates for build_pass in self.passes]
        if self.request.dry_run or (executor is None and self.request.jobs == 1):
            env = None
            for group in groups:
                tasks = self._decide_group(group, report)
                if tasks and not self.request.dry_run:
                    if env is None:
                        env = Environment(self.workspace, self.session.plugins, self.backend)
                    self._apply(run_group(env, tasks), report)
            if env is not None:  # cells that ran were reported after their group's others
                report.cells.sort(key=lambda cell: (cell.date, cell.build_pass, cell.label))
        else:
            with (executor or self._local_pool)() as submit:
                self.dispatch(groups, report, submit)
            report.cells.sort(key=lambda cell: (cell.date, cell.build_pass, cell.label))
        self._after_run(report)
        return report

    @contextmanager
    def _local_pool(self) -> Iterator[Submit]:
        """``--jobs N``: N local worker processes."""
        with ProcessPoolExecutor(
            max_workers=self.request.jobs,
            mp_context=get_context("spawn"),
            initializer=_init_worker,
            initargs=(str(self.workspace.root), self.session.product_lines),
        ) as pool:
            yield lambda group: pool.submit(_work, group)

    def _after_run(self, report: BuildReport) -> None:
        if self.request.dry_run:
            return
        ran = {cell.label for cell in report.cells if cell.status == RAN}
        if ran:
            self.after_run([self.targets[label] for label in self.order if label in ran])

    def settle(self, target: Target, day: date) -> tuple[Decision, CellTask | None]:
        """Decide one cell and remember its state for its dependents. A runnable cell is
        remembered as RUNNABLE only in a dry run; a real build remembers its outcome."""
        decision, task, _inputs = self.explain(target, day, details=False)
        if task is not None:
            if self.request.dry_run:
                self.state[(target.name, day)] = CellState(RUNNABLE, decision.reason)
            return decision, task
        summary = self.summaries.get((target.name, self._iso(day)))
        has_result = summary is not None and decision.status == SKIPPED and summary[3] is not None
        self.state[(target.name, day)] = CellState(decision.status, decision.reason, summary[2] if has_result else None)  # type: ignore[index]
        if decision.reason == "cosmetic" and not self.request.dry_run:
            self._record_cosmetic(target, day, self.full_record(target.name, day), decision)
        return decision, None

    def _decide_group(self, group: tuple[date, int], report: BuildReport) -> GroupTask | None:
        # Deciding allocates hundreds of thousands of small, long-lived, acyclic objects
        # (states, report rows) that the cyclic GC would rescan again and again (measured: a
        # third of a no-op build). They are moved out of its sight once made; run() gives
        # them back when the build ends.
        try:
            return self._decide_group_now(group, report)
        finally:
            gc.freeze()

    def _decide_group_now(self, group: tuple[date, int], report: BuildReport) -> GroupTask | None:
        day, build_pass = group
        tasks = []
        for target in self.by_pass[build_pass]:
            decision, task = self.settle(target, day)
            if task is None:
                self._report(report, target, day, decision.status, decision.reason, decision.detail or None, changes=decision.changes)
            elif self.request.dry_run:
                self._report(report, target, day, RUNNABLE, decision.reason, changes=decision.changes)
            else:
                tasks.append(task)
        if not tasks:
            return None
        return GroupTask(day=day, build_pass=build_pass, cells=tuple(tasks), run_id=self.run_id)

    def _record_cosmetic(self, target: Target, day: date, record: CellRecord | None, decision: Decision) -> None:
        """Adopt the new code hashes on a cosmetic skip, so the next build is plainly up to date."""
        if record is None:
            return
        hashes = self.hashes[target.name]
        components = dict(record.components)
        components.update(target_components(hashes))
        components["static"] = hashes.static
        inputs = CellInputs(hashes.static, components, record.root_fingerprints, record.dep_results,
                            hash_json([hashes.code, hashes.layers]))
        self.backend.put_cell_status(
            target.name, day.isoformat(), COMMITTED,
            composite_hash=inputs.key, components=components, code_hash=inputs.code_hash,
            sim_hash=decision.sim_hash,
        )
        old = record.code_hash or ""
        self.backend.record_equivalence(target.name, old, inputs.code_hash, decision.sim_hash or "", day.isoformat())

    def _apply(self, outcomes: list[CellOutcome], report: BuildReport) -> None:
        for outcome in outcomes:
            target = self.by_name[outcome.name]
            if outcome.status == RAN:
                state = CellState(RAN, outcome.reason, outcome.result_hash, reran=True)
            elif outcome.status == SKIPPED:
                state = CellState(SKIPPED, outcome.reason, outcome.result_hash)
            else:
                state = CellState(outcome.status, outcome.reason)
            self.state[(outcome.name, outcome.day)] = state
            self._report(report, target, outcome.day, outcome.status, outcome.reason, outcome.error,
                         items=outcome.items, duration=outcome.duration)

    def _report(self, report: BuildReport, target: Target, day: date, status: str, reason: str,
                detail: str | None = None, *, items: int = 0, duration: float = 0.0, changes: tuple[Any, ...] = ()) -> None:
        cell = CellReport(target.label, day, status, reason, self.graph.passes[target.label], detail, items, duration, changes)
        report.cells.append(cell)
        if self._progress is not None:
            self._progress(cell)

    def dispatch(self, groups: list[tuple[date, int]], report: BuildReport, submit: Submit) -> None:
        """Decide each group once everything it may depend on is final and ``submit`` its
        runnable cells; ``submit`` returns a future of their outcomes (a local process pool,
        or Pub/Sub workers). A group depends on the same date's previous pass and, when its
        pass looks back in time, on the previous date's same pass."""
        position = {day: index for index, day in enumerate(self.dates)}
        done: set[tuple[date, int]] = set()
        pending = list(groups)
        running: dict[Future[list[CellOutcome]], tuple[date, int]] = {}
        while pending or running:
            still = []
            for group in pending:
                day, build_pass = group
                needs = []
                if build_pass != self.passes[0]:
                    needs.append((day, self.passes[self.passes.index(build_pass) - 1]))
                if self.looks_back[build_pass] and position[day] > 0:
                    needs.append((self.dates[position[day] - 1], build_pass))
                if not all(need in done for need in needs):
                    still.append(group)
                    continue
                tasks = self._decide_group(group, report)
                if tasks is None:
                    done.add(group)
                else:
                    running[submit(tasks)] = group
            pending = still
            if not running:
                continue  # everything decided was skipped: the next sweep makes progress
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                group = running.pop(future)
                self._apply(future.result(), report)
                done.add(group)


_WORKER: dict[str, Any] = {}


def _init_worker(root: str, product_lines: tuple[str, ...]) -> None:
    from btbuild.session import Session

    session = Session(Path(root), product_lines=product_lines)
    _WORKER["env"] = Environment(session.workspace, session.plugins, session.backend)


def _work(group: GroupTask) -> list[CellOutcome]:
    return run_group(_WORKER["env"], group)


def iter_summary_lines(report: BuildReport) -> Iterator[str]:
    summary = report.summary()
    yield ", ".join(f"{count} {name}" for name, count in summary.items())


def elapsed(start: float) -> str:
    return f"{time.perf_counter() - start:.1f}s"
