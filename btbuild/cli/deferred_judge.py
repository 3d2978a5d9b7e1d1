"""The build's sim judge, imported and started only when the build needs it.

A build asks the sim judge (:mod:`btbuild.sim.isolated`) three things: whether a changed
target's stored cells may be kept (a cosmetic change), which earlier cosmetic adoptions to
examine again (when it is bound to the scheduler), and to register the SimHash of every
target that ran. A build where no code changed, nothing ran and no adoption is due - a no-op
- needs none of it, and importing the simulation machinery is a measurable part of a no-op
build. :class:`DeferredJudge` stands in for the judge until one of those questions comes.

Whether adoptions may be due is decided without the simulation modules, conservatively: the
equivalence ledger (every cosmetic adoption is recorded there) has no entry for a target of
the build within its dates, and ``--recheck-cosmetic`` was not given. Otherwise the real judge
is made and bound at once, exactly as before.
"""

from __future__ import annotations

from contextlib import ExitStack
from datetime import date
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from btbuild.analysis.cells import CellInputs
    from btbuild.session import Session
    from btbuild.sim.verdict import Verdict
    from btbuild.storage.records import CellRecord
    from btbuild.workspace.model import Target


class DeferredJudge:
    """The judge ``isolated_judge(session, register=..., recheck_all=...)`` gives, made on
    first use (see the module doc). Use it as a context manager, like that one."""

    def __init__(self, session: Session, *, register: bool, recheck_all: bool) -> None:
        self.session = session
        self.register = register
        self.recheck_all = recheck_all
        self.recheck: dict[tuple[str, date], Any] = {}  # adoptions to examine (bind)
        self._judge: Any = None
        self._scheduler: Any = None
        self._eager = False  # bound at once (adoptions may be due)
        self._stack = ExitStack()
        self._forgotten: set[tuple[str, str, str | None]] = set()  # damaged cells (_repaired)

    def __enter__(self) -> DeferredJudge:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    @property
    def started(self) -> bool:
        """Whether the real judge was needed."""
        return self._judge is not None

    def bind(self, scheduler: Any) -> None:
        self._scheduler = scheduler
        self._eager = self.recheck_all or _ledger_names(self.session, scheduler)
        if self._eager:  # adoptions may be due: the real judge finds them, as before
            self.recheck = self._real().recheck

    def __call__(self, target: Target, record: CellRecord, inputs: CellInputs) -> Verdict:
        verdict: Verdict = self._real()(target, record, inputs)
        return self._repaired(verdict)

    def recheck_verdict(self, target: Target, day: date, record: CellRecord) -> Verdict:
        verdict: Verdict = self._real().recheck_verdict(target, day, record)
        return self._repaired(verdict)

    def _repaired(self, verdict: Verdict) -> Verdict:
        """A real build forgets the damaged results the verdict's replay met (it passed over
        them: no evidence), each only while it is still the damaged generation, so that no
        later verdict (nor the build reading them) trips over them again; they rebuild as
        missing. The replay runs in the judge's child, which changes nothing itself (status
        and explain ask it too)."""
        damaged = (verdict.replay or {}).get("damaged") or []
        for cell in damaged if self.register else []:
            key = (cell["target"], cell["date"], cell["generation"])
            if cell["target"] and cell["date"] and key not in self._forgotten:
                self._forgotten.add(key)  # verdicts are kept: asked again for every cell
                self.session.backend.forget_result(*key[:2], generation=key[2])
        return verdict

    def after_run(self, targets: list[Target]) -> None:
        if targets:
            self._real().after_run(targets)

    def ahead(self, targets: list[Target]) -> None:
        """Cells of ``targets`` were handed to worker processes: their SimHashes, registered
        after the build, may be simulated meanwhile (see ``IsolatedJudge.ahead``)."""
        if targets and self.register:
            real = self._real()
            if hasattr(real, "ahead"):  # the in-process judge (memory backend) has none
                real.ahead(targets)

    def log_lines(self) -> list[str]:
        """What simulated and replayed calculations logged (nothing if none ran)."""
        return [] if self._judge is None else list(self._judge.logs.render())

    def _real(self) -> Any:
        if self._judge is None:
            from btbuild.sim.isolated import isolated_judge

            judge = self._stack.enter_context(
                isolated_judge(self.session, register=self.register, recheck_all=self.recheck_all)
            )
            if self._scheduler is not None:
                judge.bind(self._scheduler)
                if not self._eager:  # none were due at bind: what the planner holds
                    judge.recheck = self.recheck
            self._judge = judge
        return self._judge


def _ledger_names(session: Session, scheduler: Any) -> bool:
    """True when the equivalence ledger has an entry for a target of the build within its
    dates (an adoption that may be due for examination)."""
    dates = scheduler.dates
    if not dates:
        return False
    first, last = dates[0].isoformat(), dates[-1].isoformat()
    names = set(scheduler.by_name)
    return any(
        entry.target in names and first <= entry.date <= last
        for entry in session.backend.equivalences()
    )
