"""The simulation runner: a target's ``process`` on every fabricated world.

Calculations run with the real :class:`~btbuild.execution.context.Context`, so declaration
checks apply exactly as in a build. A dependency's output is made by running the upstream
target on the same world, recursively (memoized per world), so a dependent always sees
what its upstream computes from the roots it sees itself.

* per_user: one context per world user; per_user deps give this user's value, per_date deps
  the whole value.
* per_date: one context per world; per_user deps are mappings over the world's users
  (users whose upstream value is None, failed or not JSON are absent, as in a build).
* historical targets: ``ctx.previous`` is the target's own output on the previous day of the
  world's chain (:meth:`Fabricator.yesterday`), itself computed from the day before, for
  ``CHAIN_DAYS`` days: multi-day state is carried forward as in a build. None at the start
  of a chain and in the no-history world.
* ``trace(target)``, when given, wraps every ``process(ctx)`` call of ``target`` (coverage of
  the change, :mod:`btbuild.sim.coverage`); fabricating data inside a call is not traced.
* An upstream per_date failure blocks a dependent (the output is ``{"$blocked": label}``).
* An exception is an output (its type), including ``SystemExit`` and a ``KeyboardInterrupt``
  raised by the calculation (a build counts them as the item's failure too; a real Ctrl-C
  still stops, see :mod:`btbuild.execution.guard`).
* **Limited outcomes prove nothing.** Each call gets ``time_limit`` seconds through
  ``signal.setitimer`` (POSIX, main thread only; elsewhere calls are not limited). Whether a
  call times out depends on the machine's load, and so does a ``MemoryError`` or a
  ``RecursionError`` (the stack depth of the caller), so such an outcome is recorded as a
  *limit* of the (target, world) it happened on and of everything computed from it
  (dependents, later days of a historical chain). :attr:`ContextRun.limited` and
  :attr:`SimResult.limited` say so; a limited simulation is never evidence (the judge's
  verdict is ``unproven``, its SimHash is never registered, ``verify`` compares only the
  contexts neither version limited). A call that catches the time-out and returns anyway
  still counts as timed out. After ``MAX_TIMEOUTS`` time-outs a target's remaining calls
  count as time-outs without running, so a looping calculation costs a few seconds.

Roots and dep values are copied for each world, so a calculation mutating its input cannot
change what another context (or the next simulation order) sees.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import date
from typing import Any

from btbuild.errors import CalculationError
from btbuild.execution.context import Context, UserRecords
from btbuild.execution.loader import CalculationLoader, Process, SourceHook
from btbuild.sim.calls import (
    DEFAULT_TIME_LIMIT,
    LIMITED,
    MAX_TIMEOUTS,
    Failed,
    call_limited,
    fresh,
    is_failure,
    limit_reason,
    usable,
)
from btbuild.sim.canonical import canonical, combined_hash, context_hash
from btbuild.sim.changes import VersionFiles
from btbuild.sim.fabricator import WORLDS, Fabricator, World, _seed, draw
from btbuild.sim.literals import Literals, harvest
from btbuild.sim.logs import LogCapture
from btbuild.sim.schema_values import fabricated_output
from btbuild.sim.segments import segment_record
from btbuild.sim.world_store import STORE_FOLDER
from btbuild.storage.streamed import held_deps
from btbuild.workspace.model import Target, Workspace


@dataclass(frozen=True)
class ContextRun:
    world: World
    user: str | None
    output: Any  # canonical
    hash: str
    limited: str = ""  # why this context proves nothing (a time-out here or upstream), or ""


MIN_DISTINCT = 2  # distinct real outputs a simulation needs before it can prove anything


@dataclass(frozen=True)
class SimResult:
    label: str
    combined: str
    contexts: tuple[ContextRun, ...]

    @property
    def distinct_values(self) -> int:
        """Distinct outputs that are values (not an exception, time-out or blocked upstream)."""
        return len({run.hash for run in self.contexts if not is_failure(run.output)})

    @property
    def limited(self) -> str:
        """Why this simulation is no evidence (a context timed out, here or upstream, or hit
        another machine limit), or "": its SimHash then depends on the machine."""
        return next((run.limited for run in self.contexts if run.limited), "")

    @property
    def conclusive(self) -> bool:
        return not self.limited

    @property
    def informative(self) -> bool:
        """Whether equal SimHashes mean anything: a simulation where every context failed, or
        that always gives the same value (e.g. every upstream failed on the fabricated data),
        cannot tell two versions of the code apart, so it never proves a change cosmetic."""
        return self.distinct_values >= MIN_DISTINCT


class _History:
    """The lazy ``(source, days_ago) -> record`` mapping behind ``ctx.user.get(..., days_ago=)``."""

    def __init__(self, fabricator: Fabricator, world: World, user: str, optional: frozenset[str]):
        self._fabricator, self._world, self._user, self._optional = (
            fabricator,
            world,
            user,
            optional,
        )

    def get(self, key: tuple[str, int], default: Any = None) -> Any:
        source, back = key
        value = self._fabricator.user_root(
            self._world, source, self._user, back, optional=source in self._optional
        )
        return default if value is None else fresh(value)


class SimRunner:
    """Simulates the targets of one workspace on the worlds of one :class:`Fabricator`.

    ``deps_from`` makes the deps' outputs come from another runner (``verify`` runs the old
    code of a target on the outputs the new code of its upstream computed).
    """

    def __init__(
        self,
        workspace: Workspace,
        sources: dict[str, Any],
        *,
        fabricator: Fabricator | None = None,
        loader: CalculationLoader | None = None,
        source_hook: SourceHook | None = None,
        time_limit: float | None = DEFAULT_TIME_LIMIT,
        deps_from: SimRunner | None = None,
        predicates: Callable[[], dict[str, Any]] | None = None,
        alone: bool = False,
        trace: Callable[[Target], AbstractContextManager[Any]] | None = None,
        logs: LogCapture | None = None,
    ):
        self.workspace = workspace
        self.logs = logs or LogCapture()  # ctx.log of simulated calls: kept, not printed
        self.sources = sources
        self.fabricator = fabricator or Fabricator(
            sources, start=workspace.start_date, store=workspace.root / STORE_FOLDER
        )
        self.trace = trace
        self._loader = loader
        self.source_hook = source_hook  # e.g. the coverage check's probes (sim/probes.py)
        self.time_limit = time_limit
        self.deps_from = deps_from
        self._predicates = predicates or dict  # segment predicates of the plugins, on demand
        # simulate targets alone: a dep with an output schema is drawn from it, not run
        self.alone = alone
        self.by_label = workspace.by_label()
        self._outputs: dict[tuple[str, World], Any] = {}
        self._literals: dict[str, Literals] = {}
        self._factories: dict[str, Any] = {}
        self._timeouts: dict[str, int] = {}
        # (target, world) -> why its outputs prove nothing (a limited outcome there or upstream)
        self._limited: dict[tuple[str, World], str] = {}

    @property
    def loader(self) -> CalculationLoader:
        if self._loader is None:  # made on first use: it forgets the modules of earlier loaders
            self._loader = CalculationLoader(self.workspace, hook=self.source_hook)
        return self._loader

    def prepare(self, target: Target) -> None:
        """Load ``target``'s code now (raises :class:`CalculationError` when it cannot)."""
        if target.name not in self._factories:
            self._factories[target.name] = self.loader.factory(target)

    # -- results -----------------------------------------------------------------------------

    def simulate(self, name: str, worlds: list[World] | None = None) -> SimResult:
        """The SimHash of target ``name``: a hash per context and the combined hash."""
        target = self.workspace.targets[name]
        # the standard worlds only: a registered SimHash is compared with another version's,
        # and literal worlds depend on the code (verify and the coverage check run both
        # versions on the union of their literal worlds, see worlds_for)
        runs = self.contexts(
            target, worlds if worlds is not None else self.fabricator.worlds(WORLDS)
        )
        return SimResult(
            target.label,
            combined_hash(self.fabricator.version, [run.hash for run in runs]),
            tuple(runs),
        )

    def literals(self, target: Target, workspace: Workspace | None = None) -> Literals:
        """The literals of ``target``'s code and layers (``workspace``: where it lives)."""
        workspace = workspace or self.workspace
        key = f"{workspace.root}::{target.name}"
        if key not in self._literals:
            try:
                files = VersionFiles.of(target, workspace).files
            except Exception:  # unreadable code: the simulation reports it when loading
                files = (target.entry_file,)
            self._literals[key] = harvest(files)
        return self._literals[key]

    def worlds_for(self, target: Target, *also: tuple[Target, Workspace]) -> list[World]:
        """The standard worlds plus the literal worlds of ``target``'s code (and of the other
        versions in ``also``: verify runs old and new code on the same worlds)."""
        literals = self.literals(target)
        for other, workspace in also:
            literals = literals.union(self.literals(other, workspace))
        return self.fabricator.worlds(WORLDS) + self.fabricator.literal_worlds(literals)

    def contexts(self, target: Target, worlds: list[World]) -> list[ContextRun]:
        runs = []
        for world in worlds:
            out = self.outputs(target, world)
            limited = self._limited.get((target.name, world), "")
            if target.kind == "per_date":
                runs.append(_context_run(world, None, out, limited))
            else:
                runs.extend(
                    _context_run(world, user, out.get(user), limited) for user in world.users
                )
        return runs

    def outputs(self, target: Target, world: World) -> Any:
        """A target's raw output on ``world``: a value or :class:`Failed` (per_date), or
        ``{user: value or Failed}`` (per_user)."""
        key = (target.name, world)
        if key not in self._outputs:
            out = self._evaluate(target, world)
            self._outputs[key] = out
            reason = self._limit_of(target, world, out)
            if reason:
                self._limited[key] = reason
        return self._outputs[key]

    def limited(self, target: Target) -> str:
        """Why some output of ``target`` computed so far proves nothing, or "" (see
        :attr:`SimResult.limited`): verify and the coverage search ask after comparing."""
        return next((why for (name, _), why in self._limited.items() if name == target.name), "")

    def _limit_of(self, target: Target, world: World, out: Any) -> str:
        """Why ``out`` (just computed) proves nothing: a limited outcome of its own calls, of
        an upstream on the same world, or of the previous day of its chain; else ""."""
        failures = [out] if target.kind == "per_date" else list(out.values())
        own = next((f for f in failures if isinstance(f, Failed) and f.limited), None)
        if own is not None:
            return limit_reason(target.label, own, self.time_limit)
        for label in target.deps:
            if self.alone and self.by_label[label].schema_json is not None:
                continue
            provider = self
            if (
                self.deps_from is not None
                and self.by_label[label].name in self.deps_from.workspace.targets
            ):
                provider = self.deps_from
            found = provider._limited.get((self.by_label[label].name, world))
            if found:
                return found
        if target.historical:
            yesterday = self.fabricator.yesterday(world)
            if yesterday is not None:
                return self._limited.get((target.name, yesterday), "")
        return ""

    # -- evaluation --------------------------------------------------------------------------

    def _dep_output(self, label: str, world: World) -> tuple[Target, Any]:
        if self.alone and self.by_label[label].schema_json is not None:
            dep = self.by_label[label]
            key = (f"schema:{dep.name}", world)
            if key not in self._outputs:
                self._outputs[key] = fabricated_output(
                    dep.schema_json or "",
                    dep.kind,
                    world.users,
                    draw,
                    lambda *parts: _seed(self.fabricator.seed, world.index, dep.name, *parts),
                )
            return dep, self._outputs[key]
        provider = self
        if self.deps_from is not None:
            name = self.by_label[label].name
            upstream = self.deps_from.workspace.targets.get(name)
            if upstream is not None:
                return upstream, self.deps_from.outputs(upstream, world)
        dep = provider.by_label[label]
        return dep, provider.outputs(dep, world)

    def _gather(
        self, target: Target, world: World
    ) -> tuple[dict[str, dict[str, Any]], dict[str, Any], str | None]:
        """(per_user deps by user, whole deps, None), in the order of ``target.deps``; the
        label of the first failed per_date dep instead of None (later deps not evaluated)."""
        per_user_deps: dict[str, dict[str, Any]] = {}
        whole: dict[str, Any] = {}
        for label in target.deps:
            dep, out = self._dep_output(label, world)
            if dep.kind == "per_date":
                if isinstance(out, Failed):
                    return per_user_deps, whole, label
                whole[dep.name] = out
            else:
                kept = {
                    user: value
                    for user, value in out.items()
                    if not isinstance(value, Failed) and value is not None and usable(value)
                }
                per_user_deps[dep.name] = kept
                if target.kind == "per_date":
                    whole[dep.name] = kept
        return per_user_deps, whole, None

    def _evaluate(self, target: Target, world: World) -> Any:
        self.prepare(target)
        per_user_deps, whole, failed = self._gather(target, world)
        if failed is not None:
            blocked = Failed(f"blocked:{failed}")
            return blocked if target.kind == "per_date" else dict.fromkeys(world.users, blocked)
        previous = self._previous(target, world) if target.historical else None
        names = {label: self.by_label[label].name for label in target.deps}
        dep_names = {**{name: name for name in names.values()}, **names}
        optional = frozenset(target.optional_roots)
        user_sources = frozenset(s for s in target.all_roots if self.sources[s].scope == "user")

        def load_root(source: str, day: date) -> Any:
            back = (world.day - day).days
            value = self.fabricator.date_root(world, source, back, optional=source in optional)
            return fresh(value)

        ctx = Context(
            target,
            world.day,
            root_loader=load_root,
            user_sources=user_sources,
            dep_names=dep_names,
            whole_deps=held_deps(target, self.by_label, {n: fresh(v) for n, v in whole.items()}),
            previous=fresh(previous) if target.kind == "per_date" else None,
            log=self.logs.logger(target.name),
        )
        try:
            process = self._factories[target.name]()
        except CalculationError as exc:
            failure = Failed("CalculationError", str(exc))
            return failure if target.kind == "per_date" else dict.fromkeys(world.users, failure)
        if target.kind == "per_date":
            return self._call(target, process, ctx)
        results: dict[str, Any] = {}
        for user in world.users:
            today = {
                source: fresh(
                    self.fabricator.user_root(world, source, user, 0, optional=source in optional)
                )
                for source in user_sources
            }
            if target.users is not None and not self._in_segment(target, world, user, today):
                continue
            history = _History(self.fabricator, world, user, optional)
            ctx.user = UserRecords(ctx, user, today, history)  # type: ignore[arg-type]  # a fabricated _History stands in for the stored one
            ctx._user_deps = {
                name: fresh(values.get(user)) for name, values in per_user_deps.items()
            }
            if target.historical:
                ctx.previous = fresh(previous.get(user)) if isinstance(previous, dict) else None
            results[user] = self._call(target, process, ctx)
        return results

    def _in_segment(self, target: Target, world: World, user: str, today: dict[str, Any]) -> bool:
        """Make the user's record one of the target's segment (see btbuild.sim.segments);
        False when the user cannot be shown as one."""
        segment = self.workspace.segments[target.users or ""]
        optional = segment.source in target.optional_roots

        def draw(attempt: int) -> Any:
            key = user if attempt == 0 else f"{user}~{attempt}"
            return fresh(
                self.fabricator.user_root(world, segment.source, key, 0, optional=optional)
            )

        predicate = self._predicates().get(segment.predicate or "")
        inside, record = segment_record(segment, draw, predicate, world.index, user)
        today[segment.source] = record
        return inside

    def _previous(self, target: Target, world: World) -> Any:
        yesterday = self.fabricator.yesterday(world)
        if yesterday is None:
            return None
        out = self.outputs(target, yesterday)
        if target.kind == "per_date":
            return None if isinstance(out, Failed) or not usable(out) else out
        return {
            user: value
            for user, value in out.items()
            if not isinstance(value, Failed) and value is not None and usable(value)
        }

    def _call(self, target: Target, process: Process, ctx: Context) -> Any:
        if self._timeouts.get(target.name, 0) >= MAX_TIMEOUTS:
            return Failed("timeout")
        # traced per call (only this target's own code; starting coverage.py costs ~60 us,
        # while tracing everything else - fabrication, other targets - would cost several x)
        traced = self.trace(target) if self.trace is not None else nullcontext()

        def run(ctx: Context) -> Any:
            with traced:
                return process(ctx)

        out = call_limited(run, ctx, self.time_limit)
        if isinstance(out, Failed) and out.kind == "timeout":
            self._timeouts[target.name] = self._timeouts.get(target.name, 0) + 1
        return out

    # -- counterexamples ---------------------------------------------------------------------

    def describe_inputs(self, target: Target, world: World, user: str | None) -> dict[str, Any]:
        """What a context showed the calculation (a counterexample's inputs, describe.py)."""
        from btbuild.sim.describe import describe_inputs

        return describe_inputs(self, target, world, user)


def _context_run(world: World, user: str | None, out: Any, limited: str = "") -> ContextRun:
    output = out.canonical() if isinstance(out, Failed) else canonical(out)
    return ContextRun(world, user, output, context_hash(output), limited)


__all__ = [
    "DEFAULT_TIME_LIMIT",
    "LIMITED",
    "ContextRun",
    "Failed",
    "SimResult",
    "SimRunner",
    "call_limited",
    "fresh",
]
