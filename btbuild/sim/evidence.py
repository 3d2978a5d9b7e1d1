"""Coverage of the change in ``verify`` and in a build, with the targeted search.

:class:`ChangeTracing` holds one :class:`~btbuild.sim.coverage.ChangeCoverage` per changed
target and gives the runners their ``trace`` hooks, so every ``process`` call of a changed
target is traced under its own version, whichever simulation triggered it (a dependent's run
computes its upstream's outputs too).

:meth:`ChangeTracing.settle` is the bounded search run when the standard and literal worlds
left part of the change uncovered: batches of further worlds (drawn, crowd, real-derived and
literal-seeded ones with other seeds), old and new outputs compared on each, until every
changed statement ran and every changed branch went both ways, or the time budget is spent.
The score it drives down is the number of coverage gaps left (the role Hypothesis'
``target()`` would play); a world that closes a gap is kept as evidence like any other.

:func:`build_check` is the same check for a build, where the old code comes from the
source snapshot recorded with its SimHash (:mod:`btbuild.sim.snapshots`); the judge runs its
replay of stored cells inside it, traced, so that replay runs once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from btbuild.sim.coverage import VERSIONS, ChangeCoverage
from btbuild.sim.fabricator import WORLDS
from btbuild.sim.probes import Probes
from btbuild.sim.runner import ContextRun, SimRunner
from btbuild.workspace.model import Target, Workspace

if TYPE_CHECKING:
    from btbuild.session import Session

COVER_START = 20_000  # first world index of the coverage search
COVER_BATCH = 8
COVER_LITERAL_BATCH = 4
BUILD_SEARCH_SECONDS = 2.0


class ChangeTracing:
    def __init__(self, pairs: list[tuple[Target, Target]], old: Workspace, new: Workspace) -> None:
        self.old, self.new = old, new
        self.checks: dict[str, ChangeCoverage] = {}
        self.errors: dict[str, str] = {}
        for before, after in pairs:
            try:
                self.checks[after.name] = ChangeCoverage.between(before, old, after, new)
            except Exception as exc:  # unreadable code: the simulation fails on it itself
                self.errors[after.name] = f"{type(exc).__name__}: {exc}"
        # one set of probes per version for every check (a file is loaded once per version):
        # the runners of the coverage check load each version's code through them
        self.probes: dict[str, Probes] = {}
        for version in VERSIONS:
            checks = list(self.checks.values())
            if len(checks) == 1:
                self.probes[version] = checks[0].probes[version]
                continue
            lines: dict[Path, set[int]] = {}
            for check in checks:
                for path, found in check.direct(version).items():
                    lines.setdefault(path, set()).update(found)
            classes = frozenset().union(*(check.probes[version].classes for check in checks))
            self.probes[version] = Probes(
                {path: frozenset(f) for path, f in lines.items()}, classes
            )
            for check in checks:
                check.probes[version] = self.probes[version]

    def hook(self, version: str) -> Callable[[Target], AbstractContextManager[Any]]:
        def trace(target: Target) -> AbstractContextManager[Any]:
            check = self.checks.get(target.name)
            return check.tracing(version) if check is not None else nullcontext()

        return trace

    def reason(self, target: Target) -> str | None:
        if target.name in self.errors:
            return f"unproven: the change of {target.label} could not be analysed ({self.errors[target.name]})"
        check = self.checks.get(target.name)
        return None if check is None or check.empty else check.reason()

    def settle(
        self,
        new_runner: SimRunner,
        old_runner: SimRunner,
        before: Target,
        target: Target,
        seconds: float,
    ) -> tuple[str | None, dict[str, Any] | None, int]:
        """``(reason, counterexample, contexts compared)`` after searching for coverage."""
        reason = self.reason(target)
        check = self.checks.get(target.name)
        if reason is None or check is None:
            return reason, None, 0
        literals = new_runner.literals(target).union(old_runner.literals(before, self.old))
        fabricator = new_runner.fabricator
        deadline = time.perf_counter() + seconds
        offset, compared, gaps = 0, 0, check.missing()
        while gaps and time.perf_counter() < deadline:
            worlds = fabricator.worlds(COVER_BATCH, start=COVER_START + offset)
            worlds += fabricator.literal_worlds(
                literals, COVER_LITERAL_BATCH, start=1 + offset // COVER_BATCH
            )
            news = new_runner.contexts(target, worlds)
            olds = old_runner.contexts(before, worlds)
            compared += len(news)
            counter = first_difference(new_runner, target, olds, news)
            if counter is not None:
                return check.reason(), counter, compared
            offset += COVER_BATCH
            gaps = check.missing()
        return check.reason(), None, compared


def first_difference(
    runner: SimRunner, target: Target, old: list[ContextRun], new: list[ContextRun]
) -> dict[str, Any] | None:
    """The first context where both versions give a conclusive output and they differ
    (a context limited in either version, e.g. timed out, is no evidence either way)."""
    for index, (before, after) in enumerate(zip(old, new, strict=False)):
        if before.limited or after.limited:
            continue
        if before.hash != after.hash:
            return {
                "found_by": "coverage search",
                "context": index,
                "inputs": runner.describe_inputs(target, after.world, after.user),
                "old": before.output,
                "new": after.output,
            }
    return None


class BuildCheck:
    """The coverage check of one build change, prepared before the judge's replay of stored
    cells so that replay runs once, traced: real data counts as coverage of the new code."""

    def __init__(
        self,
        session: Session,
        target: Target,
        prepared: tuple[Workspace, Target, ChangeTracing] | None,
        refusal: str | None = None,
    ) -> None:
        self.session, self.target = session, target
        self.prepared, self.refusal = prepared, refusal

    def tracing_new(self) -> AbstractContextManager[Any]:
        """Trace a block under the new version (nothing to trace: a no-op)."""
        if self.prepared is None or self.empty:
            return nullcontext()
        check = self.prepared[2].checks.get(self.target.name)
        return check.tracing("new") if check is not None else nullcontext()

    @property
    def empty(self) -> bool:
        """No statement of the change to cover (the change is only in formatting...)."""
        if self.prepared is None:
            return False
        tracing = self.prepared[2]
        name = self.target.name
        return name not in tracing.errors and tracing.checks[name].empty

    def reason(self) -> str | None:
        """None when the change's coverage passes, else ``"unproven: ..."``."""
        if self.prepared is None:
            return self.refusal
        if self.empty:
            return None
        old_ws, before, tracing = self.prepared
        return _fabricated_coverage(self.session, self.target, old_ws, before, tracing)


@contextmanager
def build_check(session: Session, target: Target, old_code: str) -> Iterator[BuildCheck]:
    """The coverage check of a build's change from code ``old_code`` to ``target``'s code
    (the old code comes from the snapshot recorded with its SimHash)."""
    from btbuild.sim import snapshots

    snapshot = snapshots.recall(session.backend, old_code)
    if snapshot is None:
        yield BuildCheck(
            session,
            target,
            None,
            f"unproven: the old code of {target.label} was not recorded with its SimHash, "
            "so the change cannot be traced",
        )
        return
    with snapshots.materialized(snapshot, session.workspace, target) as (old_ws, before):
        if not snapshots.is_code_of(old_code, old_ws, before):
            yield BuildCheck(
                session,
                target,
                None,
                f"unproven: the old code recorded for {target.label} is not the code of its "
                "key (a damaged or foreign registry entry), so the change cannot be traced",
            )
            return
        tracing = ChangeTracing([(before, target)], old_ws, session.workspace)
        yield BuildCheck(session, target, (old_ws, before, tracing))


def _fabricated_coverage(
    session: Session, target: Target, old_ws: Workspace, before: Target, tracing: ChangeTracing
) -> str | None:
    """Both versions on the fabricated worlds (literal-seeded ones included), traced, then
    the bounded search for what is still uncovered."""
    from btbuild.sim.fabricator import Fabricator
    from btbuild.sim.world_store import STORE_FOLDER

    workspace = session.workspace
    sources = session.plugins.root_sources()
    fabricator = Fabricator(
        sources, start=workspace.start_date, store=workspace.root / STORE_FOLDER
    )
    predicates = session.plugins.segment_predicates  # only a segment's users, as built
    # instrumented loads: the conditions inside changed lines record what they did
    new_runner = SimRunner(
        workspace,
        sources,
        fabricator=fabricator,
        source_hook=tracing.probes["new"],
        trace=tracing.hook("new"),
        predicates=predicates,
    )
    old_runner = SimRunner(
        old_ws,
        sources,
        fabricator=fabricator,
        source_hook=tracing.probes["old"],
        deps_from=new_runner,
        trace=tracing.hook("old"),
        predicates=predicates,
    )
    worlds = new_runner.worlds_for(target, (before, old_ws))
    # the literal worlds first: their outputs are new evidence. The standard worlds' outputs
    # are the SimHash's, already found equal: they run here only for coverage, when the
    # literal worlds (and the replay) left part of the change uncovered
    for batch in (worlds[WORLDS:], worlds[:WORLDS]):
        news = new_runner.contexts(target, batch)
        olds = old_runner.contexts(before, batch)
        if first_difference(new_runner, target, olds, news) is not None:
            return f"unproven: the old and the new code of {target.label} differ on fabricated data"
        if tracing.reason(target) is None:
            break
    reason, counter, _ = tracing.settle(
        new_runner, old_runner, before, target, BUILD_SEARCH_SECONDS
    )
    if counter is not None:
        return f"unproven: the old and the new code of {target.label} differ on fabricated data"
    limited = new_runner.limited(target) or old_runner.limited(before)
    return f"unproven: {limited}" if limited else reason


__all__ = ["BuildCheck", "ChangeTracing", "build_check", "first_difference"]
