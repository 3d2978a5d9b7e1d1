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

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Protocol

from xxhash import xxh3_128_hexdigest

from btbuild.analysis import reads
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
    CellTask,
    Decision,
    compare,
    missing_roots,
    only_code_changed,
    reason_for,
    root_fingerprints,
    roots_key_text,
    target_components,
)
from btbuild.graph.graph import Graph
from btbuild.hashing.composite import TargetHashes, code_key
from btbuild.vocabulary import CellSummary, Reason, RecordStatus
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


class CacheView(Protocol):
    """What the planner reads of the action cache."""

    @property
    def summaries(self) -> Mapping[tuple[str, str], CellSummary]:
        """(name, ISO date) -> summary of every cell of the plan's dates that has a record."""

    def full_record(self, name: str, day: date) -> Any | None:
        """The whole record of a cell of the plan (a ``CellRecord``), or None."""

    def record(self, name: str, day: date) -> Any | None:
        """The whole record of any cell, before the plan's dates too (``--from``)."""

    @property
    def damaged(self) -> Mapping[tuple[str, str], str]:
        """(name, ISO date) -> why: cells whose stored result does not match its hashes
        (left out of ``summaries``: they are missing and must run)."""


class RootIndexLike(Protocol):
    def available(self, source: str, day: date) -> bool: ...

    def fingerprint(self, source: str, day: date) -> str | None: ...


Equivalent = Callable[[Target, Any, CellInputs], Any]
"""``equivalent(target, record, inputs)``: a verdict on a code-only change (an object with
``sim_hash``, set when the change is proven cosmetic, and ``reason``), or None."""


@dataclass(slots=True)
class CellState:
    status: str
    reason: str
    result_hash: str | None = None  # of the result a dependent would read
    reran: bool = False  # ran in this build (so an unchanged result means early cutoff)


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
        # expired cells (btbuild gc) that a running cell reads: decided runnable ("expired")
        self.revive: set[tuple[str, date]] = set()
        # cells that adopted their code through a cosmetic verdict, to examine again
        # (btbuild.sim.recheck), and the callback giving the verdict on one of them
        self.recheck: Mapping[tuple[str, date], Any] = {}
        self.recheck_verdict: Callable[[Target, date, Any], Any] | None = None
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
        (without ``details``, an up-to-date cell returns no inputs: the no-op fast path)."""
        daily, roots_signature, static, deps = self._constants(target)
        if not daily and not target.schedule.is_due(day):
            return _NOT_SCHEDULED, None, None
        roots = self._roots_cache.get((roots_signature, day))
        if roots is None:
            roots = self._roots_on(target, day, roots_signature)
        missing, fingerprints, roots_text = roots
        if missing:
            return (
                Decision(IMPOSSIBLE, Reason.NO_DATA, detail=f"no {', '.join(missing)} data"),
                None,
                None,
            )
        dep_results: dict[str, str] = {}
        dep_dates: dict[str, date] = {}
        key_lines = [KEY_SCHEME, static, roots_text]
        deps_reran = False
        start_date = self.workspace.start_date
        for label, dep, dep_daily, prefix in deps:  # sorted by label, as the key wants
            dep_day = (day if day >= start_date else None) if dep_daily else self.as_of(dep, day)
            if dep_day is None:
                return (
                    Decision(
                        IMPOSSIBLE,
                        Reason.UPSTREAM,
                        detail=f"{label} has no scheduled date on or before {day.isoformat()}",
                    ),
                    None,
                    None,
                )
            state = self.state.get((dep.name, dep_day)) or self._outside_state(dep, dep_day)
            if state.status == IMPOSSIBLE:
                return (
                    Decision(
                        IMPOSSIBLE,
                        Reason.UPSTREAM,
                        detail=f"{label} is impossible on {dep_day.isoformat()}",
                    ),
                    None,
                    None,
                )
            if state.status == RUNNABLE:
                dep_results[label] = "?"  # dry run: the dep will run, its result is unknown
            elif state.result_hash is None:
                return (
                    Decision(
                        BLOCKED,
                        Reason.WAITING_FOR_DEPS,
                        detail=f"{label} on {dep_day.isoformat()} is {state.status}",
                    ),
                    None,
                    None,
                )
            else:
                dep_results[label] = state.result_hash
                deps_reran = deps_reran or state.reran
            key_lines.append(prefix + dep_results[label])
            dep_dates[dep.name] = dep_day
        if target.dep_lookback:
            blocked = reads.dep_history(self, target, day, dep_results, dep_dates)
            if blocked is not None:
                return blocked, None, None
            # the input key wants its dep lines sorted by name ("//a:x@-1" does not sort
            # next to "//a:x" among other labels): rebuild them
            key_lines[3:] = [f"d:{name}={value}" for name, value in sorted(dep_results.items())]
        previous_date = None
        if target.historical:
            found = self.previous(target, day)
            if isinstance(found, Decision):
                return found, None, None
            if found is not None:
                previous_date, previous_hash = found
                dep_results[PREVIOUS] = previous_hash
                key_lines.append(
                    f"d:{PREVIOUS}={previous_hash}"
                )  # "@" sorts after "//": still sorted
        hashes = self.hashes[target.name]
        key = xxh3_128_hexdigest(
            "\n".join(key_lines).encode()
        )  # == input_key(...), inlined: the hot path
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
        components, code_hash = self.target_inputs(target)
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
            changed=tuple(change.component for change in decision.changes),
        )
        return decision, task, inputs

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
        """A historical cell's previous result: the latest earlier cell that has one."""
        probe = day - timedelta(days=1)
        while probe >= self.workspace.start_date:
            state = self.cell_state(target, probe)
            if state.status in (SKIPPED, RAN) and state.result_hash is not None:
                return probe, state.result_hash
            if state.status == RUNNABLE:
                return probe, "?"
            if state.status not in (IMPOSSIBLE,) and not (
                state.status == SKIPPED and state.reason == Reason.NOT_SCHEDULED
            ):
                return Decision(
                    BLOCKED,
                    Reason.WAITING_FOR_PREVIOUS_DAY,
                    detail=f"{target.label} on {probe.isoformat()} is {state.status}",
                )
            probe -= timedelta(days=1)
        return None

    def _compare(
        self, target: Target, day: date, inputs: CellInputs, deps_reran: bool
    ) -> tuple[Decision, str | None]:
        if target.name in self.forced:
            return Decision(RUNNABLE, Reason.FORCED), None
        if self.revive and (target.name, day) in self.revive:
            return Decision(RUNNABLE, Reason.EXPIRED, detail="a cell that runs reads it"), None
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
        if (
            record.status == RECORD_EXPIRED
            and composite_hash == inputs.key
            and record.result_hash is not None
        ):  # up to date, its result collected: recomputed only when a cell must read it
            return Decision(SKIPPED, Reason.EXPIRED, result_hash=record.result_hash), None
        if record.status == RECORD_DEAD_LETTER and record.attempt_key in (None, inputs.key):
            # dead letters belong to their inputs: the same inputs stay dead (unless
            # --retry-dead); a changed key is decided as any other cell below
            if self.retry_dead:
                return Decision(RUNNABLE, Reason.RETRY_DEAD, detail=record.last_error or ""), None
            return Decision(DEAD_LETTER, Reason.MAX_ATTEMPTS, detail=record.last_error or ""), None
        if not record.has_result:
            if record.status == RECORD_DEAD_LETTER:
                detail = f"its inputs changed since it was dead-lettered: {record.last_error or ''}"
                return Decision(RUNNABLE, Reason.RETRY, detail=detail), None
            if record.status == RECORD_FAILED:
                return Decision(RUNNABLE, Reason.RETRY, detail=record.last_error or ""), None
            return _NEW, None
        changes = compare(record.components, record.root_fingerprints, record.dep_results, inputs)
        if not changes:
            reason = Reason.EARLY_CUTOFF if deps_reran else Reason.UP_TO_DATE
            return Decision(SKIPPED, reason, result_hash=record.result_hash), None
        why = ""
        if "?" not in inputs.dep_results.values() and only_code_changed(changes):
            verdict = self.equivalent(target, record, inputs)
            sim_hash = getattr(verdict, "sim_hash", None)
            if sim_hash is not None:
                decision = Decision(
                    SKIPPED,
                    Reason.COSMETIC,
                    tuple(changes),
                    sim_hash=sim_hash,
                    result_hash=record.result_hash,
                )
                return decision, sim_hash
            why = str(getattr(verdict, "reason", "") or "")  # why it could not be proven
        if record.status == RECORD_FAILED and record.attempt_key in (None, inputs.key):
            return Decision(
                RUNNABLE, Reason.RETRY, tuple(changes), detail=record.last_error or ""
            ), None
        return Decision(RUNNABLE, reason_for(changes), tuple(changes), detail=why), None

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
