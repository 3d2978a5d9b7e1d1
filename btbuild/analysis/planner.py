"""The planner: decide each (target, date) cell of a build from its inputs and the cache.

Pure analysis: it reads what the cache says through :class:`CacheView` (the execution stage
provides one over storage) and the root index, and returns a :class:`Decision` per cell, plus
a :class:`~btbuild.analysis.cells.CellTask` for each cell that must run. The scheduler calls
:meth:`Planner.settle` for a cell once every cell it reads is final, and tells the planner how
cells that ran ended (:meth:`Planner.record_outcome`), which is what makes early cutoff exact.
A dry run settles runnable cells as ``runnable`` instead.

The no-op path is the hot one (365k cells for 1,000 targets over a year): an up-to-date cell
costs one input hash, compared as a string with the cache's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Any

from xxhash import xxh3_128_hexdigest

from btbuild.analysis import reads
from btbuild.analysis.cells import (
    BLOCKED,
    FAILED,
    IMPOSSIBLE,
    KEY_SCHEME,
    RAN,
    RUNNABLE,
    SKIPPED,
    CellInputs,
    CellTask,
    Decision,
    missing_roots,
    root_fingerprints,
    roots_key_text,
    target_components,
)
from btbuild.analysis.rule import against_record
from btbuild.analysis.views import (
    CacheView,
    CellState,
    Equivalent,
    RecheckVerdict,
    RootIndexLike,
)
from btbuild.graph.graph import Graph
from btbuild.hashing.composite import TargetHashes, code_key
from btbuild.vocabulary import Reason, RecordStatus
from btbuild.workspace.model import DAILY, Target, Workspace

# statuses of cache records, bound once (the no-op path compares one per cell)
RECORD_FAILED = RecordStatus.FAILED
RECORD_DEAD_LETTER = RecordStatus.DEAD_LETTER
RECORD_IMPOSSIBLE = RecordStatus.IMPOSSIBLE
RECORD_EXPIRED = RecordStatus.EXPIRED

_UP_TO_DATE = Decision(SKIPPED, Reason.UP_TO_DATE)
_NEW = Decision(RUNNABLE, Reason.NEW)
_EARLY_CUTOFF = Decision(SKIPPED, Reason.EARLY_CUTOFF)
_NOT_SCHEDULED = Decision(SKIPPED, Reason.NOT_SCHEDULED)


def _no_data(missing: list[str]) -> Decision:
    return Decision(IMPOSSIBLE, Reason.NO_DATA, detail=f"no {', '.join(missing)} data")


def _no_dep_day(label: str, day: date) -> Decision:
    detail = f"{label} has no scheduled date on or before {day.isoformat()}"
    return Decision(IMPOSSIBLE, Reason.UPSTREAM, detail=detail)


def _dep_not_final(label: str, dep_day: date, state: CellState) -> Decision:
    """A dep's cell without a result: impossible (so is this cell) or not final yet."""
    if state.status == IMPOSSIBLE:
        detail = f"{label} is impossible on {dep_day.isoformat()}"
        return Decision(IMPOSSIBLE, Reason.UPSTREAM, detail=detail)
    detail = f"{label} on {dep_day.isoformat()} is {state.status}"
    return Decision(BLOCKED, Reason.WAITING_FOR_DEPS, detail=detail)


class Planner:
    """Decides the cells of one build. ``targets`` are the plan's targets in graph order."""

    def __init__(
        self,
        workspace: Workspace,
        graph: Graph,
        targets: Sequence[Target],
        hashes: Mapping[str, TargetHashes],
        index: RootIndexLike,
        dates: Sequence[date],
        cache: CacheView,
        *,
        force: bool | frozenset[str] = False,
        dry_run: bool = False,
        retry_dead: bool = False,
        equivalent: Equivalent | None = None,
    ):
        self.workspace = workspace
        self.graph = graph
        self.targets = {target.label: target for target in targets}
        self.hashes = hashes
        self.index = index
        self.dates = list(dates)
        self.cache = cache
        # names of the targets whose cells are forced (True: every target of the plan)
        self.forced: frozenset[str] = (
            frozenset(t.name for t in targets) if force is True else frozenset(force or ())
        )
        self.retry_dead = retry_dead
        self.dry_run = dry_run
        self.equivalent = equivalent or (lambda target, record, inputs: None)
        self.state: dict[tuple[str, date], CellState] = {}
        # cells the build decided must re-run whatever the record says (see Scheduler._settle)
        self.must_run: dict[tuple[str, date], Decision] = {}
        # expired cells (btbuild gc) that a running cell reads: decided runnable ("expired")
        self.revive: set[tuple[str, date]] = set()
        # cells that adopted their code through a cosmetic verdict, to examine again
        # (btbuild.sim.recheck), and the callback giving the verdict on one of them
        self.recheck: Mapping[tuple[str, date], Any] = {}
        self.recheck_verdict: RecheckVerdict | None = None
        self._per_target: dict[str, tuple[dict[str, str], str]] = {}
        self._roots_cache: dict[tuple[int, date], tuple[list[str], dict[str, str], str]] = {}
        self._roots_ids: dict[tuple[Any, ...], int] = {}
        self._constants_cache: dict[
            str, tuple[bool, int, str, list[tuple[str, Target, bool, str]]]
        ] = {}
        self._iso_cache: dict[date, str] = {}
        self.passes = sorted({graph.passes[target.label] for target in targets})
        self.by_pass: dict[int, list[Target]] = {p: [] for p in self.passes}
        for target in targets:
            self.by_pass[graph.passes[target.label]].append(target)
        self.looks_back = {
            p: any(self._looks_back(t) for t in self.by_pass[p]) for p in self.passes
        }

    def record_outcome(
        self, name: str, day: date, status: str, reason: str, result_hash: str | None
    ) -> None:
        """How a cell that ran ended; a cell that ran now means unchanged results are cut off."""
        if status == RAN:
            self.state[(name, day)] = CellState(RAN, reason, result_hash, reran=True)
        elif status == SKIPPED:
            self.state[(name, day)] = CellState(SKIPPED, reason, result_hash)
        else:
            self.state[(name, day)] = CellState(status, reason)

    def _looks_back(self, target: Target) -> bool:
        if target.historical or target.dep_lookback:
            return True
        return any(self.graph.targets[label].schedule != target.schedule for label in target.deps)

    def _outside_state(self, target: Target, day: date) -> CellState:
        """The state of a cell before the build range (--from): what the cache says."""
        if not target.schedule.is_due(day):
            return CellState(SKIPPED, Reason.NOT_SCHEDULED)
        if missing_roots(target, day, self.index.available):
            return CellState(IMPOSSIBLE, Reason.NO_DATA)
        record = self.cache.record(target.name, day)
        if record is None:
            if self._upstream_impossible(target, day):  # e.g. a weekend never built
                return CellState(IMPOSSIBLE, Reason.UPSTREAM)
            return CellState(BLOCKED, Reason.NOT_BUILT)
        if record.status == RECORD_IMPOSSIBLE:
            return CellState(IMPOSSIBLE, Reason.UPSTREAM)
        if record.status == RECORD_EXPIRED and record.result_hash is not None:
            return CellState(SKIPPED, Reason.EXPIRED, record.result_hash)
        if record.has_result:
            return CellState(SKIPPED, Reason.UP_TO_DATE, record.result_hash)
        return CellState(FAILED, record.status)

    def _upstream_impossible(self, target: Target, day: date) -> bool:
        """Whether a dep's cell read on ``day`` is impossible (the cell would be too)."""
        for label in target.deps:
            dep = self.graph.targets[label]
            dep_day = self.as_of(dep, day)
            if dep_day is None or self.cell_state(dep, dep_day).status == IMPOSSIBLE:
                return True
        return False

    def expired_reads(self, task: CellTask) -> list[tuple[Target, date]]:
        """The expired cells (``btbuild gc``) a runnable cell reads (see analysis/reads.py)."""
        return reads.expired_reads(self, task)

    def revival(self, target: Target, day: date) -> CellTask | None:
        """The task recomputing an expired cell a running cell reads (see analysis/reads.py)."""
        return reads.revival(self, target, day)

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

    def decide(
        self, target: Target, day: date, *, details: bool = True
    ) -> tuple[Decision, CellTask | None, CellInputs | None]:
        """The decision for one cell, its task if it runs, and the inputs it compared
        (without ``details``, an up-to-date cell returns no inputs: the no-op fast path,
        kept in this one function: it runs for every cell of a build)."""
        daily, roots_signature, static, deps = self._constants(target)
        if not daily and not target.schedule.is_due(day):
            return _NOT_SCHEDULED, None, None
        roots = self._roots_cache.get((roots_signature, day))
        if roots is None:
            roots = self._roots_on(target, day, roots_signature)
        missing, fingerprints, roots_text = roots
        if missing:
            return _no_data(missing), None, None
        dep_results: dict[str, str] = {}
        dep_dates: dict[str, date] = {}
        key_lines = [KEY_SCHEME, static, roots_text]
        deps_reran = False
        start_date = self.workspace.start_date
        for label, dep, dep_daily, prefix in deps:  # sorted by label, as the key wants
            dep_day = (day if day >= start_date else None) if dep_daily else self.as_of(dep, day)
            if dep_day is None:
                return _no_dep_day(label, day), None, None
            state = self.state.get((dep.name, dep_day)) or self._outside_state(dep, dep_day)
            result_hash = state.result_hash
            if result_hash is None:  # impossible, not final, or (dry run) runnable
                if state.status != RUNNABLE:
                    return _dep_not_final(label, dep_day, state), None, None
                result_hash = "?"  # dry run: the dep will run, its result is unknown
            else:
                deps_reran = deps_reran or state.reran
            dep_results[label] = result_hash
            key_lines.append(prefix + result_hash)
            dep_dates[dep.name] = dep_day
        previous_date = None
        if target.dep_lookback or target.historical:
            found = reads.looked_back(self, target, day, dep_results, dep_dates, key_lines)
            if isinstance(found, Decision):
                return found, None, None
            previous_date = found
        key = xxh3_128_hexdigest("\n".join(key_lines).encode())  # == input_key(...), inlined
        if not details and target.name not in self.forced:
            iso = self._iso_cache.get(day) or self._iso(day)
            summary = self.cache.summaries.get((target.name, iso))
            if (
                summary is not None
                and summary.composite_hash == key
                and summary.generation is not None
                and summary.status != RECORD_DEAD_LETTER
                and (not self.recheck or (target.name, day) not in self.recheck)
            ):
                return (_EARLY_CUTOFF if deps_reran else _UP_TO_DATE), None, None
        inputs = self._inputs(target, key, fingerprints, dep_results)
        decision, sim_hash = self._compare(target, day, inputs, deps_reran)
        task = self._task(target, day, decision, inputs, dep_dates, previous_date, sim_hash)
        return decision, task, inputs

    def _inputs(
        self, target: Target, key: str, fingerprints: dict[str, str], dep_results: dict[str, str]
    ) -> CellInputs:
        components, code_hash = self.target_inputs(target)
        inputs = CellInputs(
            static=self.hashes[target.name].static,
            components=components,
            root_fingerprints=fingerprints,
            dep_results=dep_results,
            code_hash=code_hash,
        )
        inputs.__dict__["key"] = key  # already computed (CellInputs.key is a cached property)
        return inputs

    def _task(
        self,
        target: Target,
        day: date,
        decision: Decision,
        inputs: CellInputs,
        dep_dates: dict[str, date],
        previous_date: date | None,
        sim_hash: str | None,
    ) -> CellTask | None:
        if not decision.runs:
            return None
        return CellTask(
            name=target.name,
            day=day,
            reason=decision.reason,
            build_pass=self.graph.passes[target.label],
            key=inputs.key,
            static=inputs.static,
            code_hash=inputs.code_hash,
            components=dict(inputs.components),
            root_fingerprints=dict(inputs.root_fingerprints),
            dep_results=dict(inputs.dep_results),
            dep_dates=dep_dates,
            previous_date=previous_date,
            sim_hash=sim_hash,
            changed=tuple(change.component for change in decision.changes),
        )

    def _constants(
        self, target: Target
    ) -> tuple[bool, int, str, list[tuple[str, Target, bool, str]]]:
        """What the planner needs of a target on every date, computed once: whether it is
        daily, an id of its roots declaration (targets sharing it share root fingerprints),
        its static hash and its deps as (label, dep, dep is daily, input-key line prefix),
        sorted by label."""
        constants = self._constants_cache.get(target.name)
        if constants is None:
            signature = (target.roots, target.optional_roots, target.lookback)
            roots_id = self._roots_ids.setdefault(signature, len(self._roots_ids))
            deps = [
                (
                    label,
                    self.graph.targets[label],
                    self.graph.targets[label].schedule is DAILY,
                    f"d:{label}=",
                )
                for label in sorted(target.deps)
            ]
            constants = (target.schedule is DAILY, roots_id, self.hashes[target.name].static, deps)
            self._constants_cache[target.name] = constants
        return constants

    def _iso(self, day: date) -> str:
        iso = self._iso_cache.get(day)
        if iso is None:
            iso = self._iso_cache[day] = day.isoformat()
        return iso

    def _roots_on(
        self, target: Target, day: date, roots_id: int
    ) -> tuple[list[str], dict[str, str], str]:
        """Missing mandatory roots, the root fingerprints of a target's cell and their text
        for the input key, shared by every target with the same roots declaration."""
        fingerprints = root_fingerprints(target, day, self.index.fingerprint)
        roots = (
            missing_roots(target, day, self.index.available),
            fingerprints,
            roots_key_text(fingerprints),
        )
        self._roots_cache[(roots_id, day)] = roots
        return roots

    def target_inputs(self, target: Target) -> tuple[dict[str, str], str]:
        """A target's hash components and code key (``record.code_hash``), computed once per build."""
        cached = self._per_target.get(target.name)
        if cached is None:
            hashes = self.hashes[target.name]
            cached = (target_components(hashes), code_key(hashes))
            self._per_target[target.name] = cached
        return cached

    def previous(self, target: Target, day: date) -> tuple[date, str] | Decision | None:
        """A historical cell's previous result (see analysis/reads.py)."""
        return reads.previous_result(self, target, day)

    def _compare(
        self, target: Target, day: date, inputs: CellInputs, deps_reran: bool
    ) -> tuple[Decision, str | None]:
        if target.name in self.forced:
            return Decision(RUNNABLE, Reason.FORCED), None
        if self.must_run and (target.name, day) in self.must_run:
            return self.must_run[(target.name, day)], None
        if self.revive and (target.name, day) in self.revive:  # expired, or damaged before
            damaged = self.cache.damaged.get((target.name, day.isoformat()))  # the plan
            reason = Reason.EXPIRED if damaged is None else Reason.DAMAGED
            return Decision(RUNNABLE, reason, detail=damaged or "a cell that runs reads it"), None
        if self.recheck and (target.name, day) in self.recheck:
            again = self._recheck(target, day)
            if again is not None:
                return again, None
        summary = self.cache.summaries.get((target.name, day.isoformat()))
        if summary is None:
            why = self.cache.damaged.get((target.name, day.isoformat()))
            if why is not None:
                return Decision(RUNNABLE, Reason.DAMAGED, detail=why), None
            return _NEW, None
        composite_hash = summary.composite_hash
        if (
            summary.status != RECORD_DEAD_LETTER
            and summary.generation is not None
            and composite_hash == inputs.key
        ):
            return (_EARLY_CUTOFF if deps_reran else _UP_TO_DATE), None  # the no-op fast path
        record = self.cache.full_record(target.name, day)
        if record is None:  # unreadable in full: a miss
            return _NEW, None
        return against_record(
            target, inputs, record, composite_hash, deps_reran, self.retry_dead, self.equivalent
        )

    def _recheck(self, target: Target, day: date) -> Decision | None:
        """An earlier cosmetic adoption that today's evidence rule cannot prove re-runs."""
        record = self.cache.full_record(target.name, day)
        if record is None or record.sim_hash is None or self.recheck_verdict is None:
            return None  # not (or no longer: it re-ran) an adopted result
        verdict = self.recheck_verdict(target, day, record)
        if getattr(verdict, "sim_hash", None) is not None:
            return None
        return Decision(
            RUNNABLE, Reason.COSMETIC_RECHECK, detail=str(getattr(verdict, "reason", ""))
        )

    def settle(self, target: Target, day: date) -> tuple[Decision, CellTask | None]:
        """Decide one cell and remember its state for its dependents. A runnable cell is
        remembered as RUNNABLE only in a dry run; a real build remembers its outcome."""
        decision, task, _inputs = self.decide(target, day, details=False)
        if task is not None:
            if self.dry_run:
                self.state[(target.name, day)] = CellState(RUNNABLE, decision.reason)
            return decision, task
        # The result hash dependents read comes from the same read that decided the skip: a
        # full record read later than the plan's summaries may show another builder's newer
        # result, and pairing its "up to date" with the summary's old hash settled stale cells.
        result_hash = decision.result_hash
        if result_hash is None and decision.status == SKIPPED:
            summary = self.cache.summaries.get((target.name, self._iso(day)))
            if summary is not None and summary.generation is not None:
                result_hash = summary.result_hash
        self.state[(target.name, day)] = CellState(decision.status, decision.reason, result_hash)
        return decision, None
