"""The build's judge of code changes: one :class:`Verdict` per (target, old code).

The scheduler's planner calls it for every cell whose only changes are its code and/or layers
hashes; the verdict is computed once, for the first such cell, and holds for every cell of
that target the old code made. The evidence rule is in :mod:`btbuild.sim.verdict`.

It also carries the cells to examine again (``recheck``, :mod:`btbuild.sim.recheck`): cells
that adopted their code hash through a cosmetic verdict proven under an older evidence scheme,
or every adopted cell with ``btbuild build --recheck-cosmetic``.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import date
from typing import TYPE_CHECKING, Any

from btbuild.sim.evidence import build_check
from btbuild.sim.logs import LogCapture
from btbuild.sim.optimizer import SimHashes
from btbuild.sim.recheck import Adoption, restamp, stale_adoptions
from btbuild.sim.replay import Replayer, ReplayResult
from btbuild.sim.verdict import (
    BEHAVIOUR_CHANGED,
    COSMETIC,
    UNPROVEN,
    Verdict,
    unproven,
    weak,
)
from btbuild.storage.records import CellRecord
from btbuild.workspace.model import Target

if TYPE_CHECKING:
    from btbuild.session import Session


class Judge:
    """``equivalent(target, record, inputs) -> Verdict`` for one build (or dry run)."""

    def __init__(self, session: Session, *, register: bool = False, recheck_all: bool = False):
        self.session = session
        self.register = register
        self.recheck_all = recheck_all
        self.logs = LogCapture()
        self.sims = SimHashes(session, self.logs)
        self.verdicts: dict[tuple[str, str], Verdict] = {}
        self.first: date | None = None
        self.last: date | None = None
        self.prefer: date | None = None
        self.recheck: dict[tuple[str, date], Adoption] = {}
        self._replayer: Replayer | None = None

    @property
    def replayer(self) -> Replayer:
        if self._replayer is None:
            session = self.session
            self._replayer = Replayer(
                session.workspace,
                session.plugins.root_sources(),
                session.backend,
                loader=self.sims.runner.loader,
                logs=self.logs,
            )
        return self._replayer

    def bind(self, scheduler: Any) -> None:
        """Called by the scheduler once its dates and targets are known."""
        dates = scheduler.dates
        self.first = min(self.session.workspace.start_date, dates[0])
        self.last = dates[-1]
        self.prefer = dates[-1] if len(dates) == 1 else None
        self.recheck = stale_adoptions(
            self.session, scheduler.by_name, dates, everything=self.recheck_all
        )

    # -- the planner's callbacks -----------------------------------------------------------

    def __call__(self, target: Target, record: CellRecord, inputs: Any) -> Verdict:
        old = record.code_hash
        if not old:
            return unproven("the stored cell records no code hash")
        key = (target.name, old)
        if key not in self.verdicts:
            self.verdicts[key] = self.judge(
                target, old, lambda r: r.code_hash == old, seed_key=old, day=record.date
            )
        return self.verdicts[key]

    def recheck_verdict(self, target: Target, day: date, record: CellRecord) -> Verdict:
        """The verdict on an earlier cosmetic adoption of ``record``'s code (see recheck.py)."""
        adoption = self.recheck[(target.name, day)]
        key = (f"recheck:{target.name}", adoption.old_code)
        if key not in self.verdicts:
            adopted = record.code_hash
            self.verdicts[key] = self.judge(
                target,
                adoption.old_code,
                lambda r: r.code_hash == adopted and r.sim_hash is not None,
                seed_key=f"recheck:{adoption.old_code}",
                day=record.date,
            )
        verdict = self.verdicts[key]
        if verdict.skips and self.register:
            restamp(self.session.backend, target, day, adoption, record, verdict)
        return verdict

    # -- the rule --------------------------------------------------------------------------

    def judge(
        self,
        target: Target,
        old_code: str,
        keep: Callable[[CellRecord], bool],
        *,
        seed_key: str,
        day: str,
    ) -> Verdict:
        """Fabricated evidence first (cheap, registered), then replay (traced for the
        coverage check: it runs once), then coverage."""
        old = self.sims.old(target, old_code)
        if isinstance(old, Verdict):
            return old
        result = self.sims.result(target)
        if result is None:
            return unproven("the new code cannot be loaded")
        contexts = len(result.contexts)
        if result.limited:  # a time-out is no evidence: neither equal nor different
            return unproven(result.limited)
        if result.combined != old:
            return Verdict(
                BEHAVIOUR_CHANGED,
                "behaviour_changed: its SimHash on the fabricated contexts differs from the old code's",
                fabricated_contexts=contexts,
            )
        if not result.informative:
            return weak(result.distinct_values, contexts)
        with build_check(self.session, target, old_code) as check:
            # replayed real data counts as coverage of the new code: its calls are traced
            replay = self._replay(target, keep, seed_key, day, trace=check.tracing_new)
            facts = {
                "replay": replay.to_json(),
                "fabricated_contexts": contexts,
                "distinct_outputs": result.distinct_values,
            }
            refused = _replay_refusal(replay, facts)
            if refused is not None:
                return refused
            reason = check.reason()
        if reason is not None:
            return Verdict(UNPROVEN, reason, **facts)  # type: ignore[arg-type]  # as above
        if self.register:
            self.sims.register(target, result.combined)
        return Verdict(
            COSMETIC,
            f"cosmetic: {len(replay.replayed)} stored cell(s) replayed ({replay.contexts} "
            f"contexts) and {contexts} fabricated contexts agree",
            combined=result.combined,
            **facts,  # type: ignore[arg-type]  # facts: Verdict's int fields, typed dict[str, object]
        )

    def _replay(
        self,
        target: Target,
        keep: Callable[[CellRecord], bool],
        seed_key: str,
        day: str,
        trace: Callable[[], AbstractContextManager[Any]] | None = None,
    ) -> ReplayResult:
        first = self.first or self.session.workspace.start_date
        last = self.last or date.fromisoformat(day)
        return self.replayer.replay(
            target, keep, first, last, prefer=self.prefer, seed_key=seed_key, trace=trace
        )


def _replay_refusal(replay: ReplayResult, facts: dict[str, object]) -> Verdict | None:
    """The verdict when the replay of stored cells refuses the change (a difference, a
    limited call, nothing replayable); None when it agrees."""
    if replay.counterexample is not None:
        found = replay.counterexample
        user = f" user {found['user']}" if found.get("user") else ""
        return Verdict(
            BEHAVIOUR_CHANGED,
            f"behaviour_changed: replay of the stored cell {found['date']}{user} differs "
            f"(see {found['command']})",
            counterexample=found,
            **facts,  # type: ignore[arg-type]  # facts: Verdict's int fields, typed dict[str, object]
        )
    if replay.limited:
        return Verdict(UNPROVEN, f"unproven: {replay.limited}", **facts)  # type: ignore[arg-type]  # as above
    if not replay.replayed:
        return Verdict(
            UNPROVEN,
            "unproven: no stored cell of the old code could be replayed "
            "(their inputs changed since)",
            **facts,  # type: ignore[arg-type]  # facts: Verdict's int fields, typed dict[str, object]
        )
    return None
