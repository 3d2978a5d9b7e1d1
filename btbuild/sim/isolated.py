"""The build's sim judge with every run of calculation code in a child process.

Proving a change cosmetic runs calculation code: the old and new code on fabricated worlds,
the new code on the real inputs of stored cells, the coverage search, and the SimHash of every
target that ran (registered after the build). Calculation code can do anything: call
``os._exit``, crash the interpreter, exhaust memory, raise ``SystemExit`` or
``KeyboardInterrupt``, switch the alarm off and loop. None of it may end the build, or change
its exit code, or leave it with stale results. So :class:`IsolatedJudge` runs a plain
:class:`~btbuild.sim.judge.Judge` in one spawned process (started on first use, kept for the
build so its fabricated worlds are reused, watched like the ``--jobs`` workers: it ends with
the builder), and keeps in the builder only what runs no calculation code: sim keys, the
registry and ledger writes, the adoptions to examine again. A build whose cells run in worker
processes also simulates, in a second such process, the SimHashes it will register while the
workers run (:meth:`IsolatedJudge.ahead`), so its questions never wait behind them.

When the child dies, fails or does not answer within ``ANSWER_SECONDS``, the verdict is
``unproven`` with the reason (the cell re-runs: the build's own isolation then deals with the
code) and nothing is registered; the next question starts a new child. A real Ctrl-C still
stops the build. The child checks that the code it sees is the code the builder hashed (the
workspace may be edited during a build); otherwise it answers ``unproven``.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from concurrent.futures import BrokenExecutor, Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as AnswerTimeout
from contextlib import contextmanager, suppress
from datetime import date
from multiprocessing import connection, get_context
from multiprocessing.util import Finalize
from pathlib import Path
from typing import TYPE_CHECKING, Any

from btbuild.sim.logs import LogCapture
from btbuild.sim.optimizer import SimHashes, code_key
from btbuild.sim.recheck import Adoption, restamp, stale_adoptions
from btbuild.sim.verdict import Verdict, unproven
from btbuild.sim.world_store import save_all
from btbuild.storage.records import CellRecord
from btbuild.workspace.model import Target

if TYPE_CHECKING:
    from btbuild.session import Session

QUESTIONS, AHEAD = "questions", "ahead"  # the roles of the children (IsolatedJudge._pools)
ANSWER_SECONDS = 900.0  # one verdict or SimHash: cold worlds, replay and coverage search
EXIT_SECONDS = 10.0  # for the child to end once closed
_CHILD: dict[str, Any] = {}


class IsolatedJudge:
    """``equivalent(target, record, inputs) -> Verdict`` for one build, isolated (see above).

    The same interface as :class:`~btbuild.sim.judge.Judge` (``bind``, ``recheck``,
    ``recheck_verdict``, ``logs``), plus ``after_run`` (the scheduler's callback registering
    the SimHash of every target that ran) and ``close``.
    """

    def __init__(self, session: Session, *, register: bool = False, recheck_all: bool = False):
        self.session = session
        self.register = register
        self.recheck_all = recheck_all
        self.logs = LogCapture()
        self.sims = SimHashes(session, self.logs)  # keys and writes only: never simulates here
        self.verdicts: dict[tuple[str, str], Verdict] = {}
        self.recheck: dict[tuple[str, date], Adoption] = {}
        self.window: tuple[date | None, date | None, date | None] = (None, None, None)
        # the child of each role: QUESTIONS (verdicts, btbuild sim...) and AHEAD (see ahead)
        self._pools: dict[str, ProcessPoolExecutor] = {}
        # target name -> (future, pool, its processes) of a simulation started ahead
        self._ahead: dict[str, tuple[Future[Any], ProcessPoolExecutor, list[Any]]] = {}

    def bind(self, scheduler: Any) -> None:
        dates = scheduler.dates
        first = min(self.session.workspace.start_date, dates[0])
        self.window = (first, dates[-1], dates[-1] if len(dates) == 1 else None)
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
            verdict = self._verdict(target, ("judge", record, None, None))
            if verdict.skips and self.register:
                self.sims.register(target, verdict.combined)
            self.verdicts[key] = verdict
        return self.verdicts[key]

    def recheck_verdict(self, target: Target, day: date, record: CellRecord) -> Verdict:
        adoption = self.recheck[(target.name, day)]
        key = (f"recheck:{target.name}", adoption.old_code)
        if key not in self.verdicts:
            verdict = self._verdict(target, ("recheck", record, adoption, day))
            if verdict.skips and self.register:
                self.sims.register(target, verdict.combined)
            self.verdicts[key] = verdict
        verdict = self.verdicts[key]
        if verdict.skips and self.register:
            restamp(self.session.backend, target, day, adoption, record, verdict)
        return verdict

    def after_run(self, targets: list[Target]) -> None:
        """Register the SimHash of each target that ran (simulated in the child). A target
        whose sim key is registered already (the same code, declaration, infra, upstream keys
        and fabricator version: its simulation would give the same SimHash) is not simulated
        again, and when no target needs it, no child is started. A limited simulation (a
        time-out...) is recorded as such, never as a SimHash; a dying or failing one
        registers nothing (a later change from that code re-runs). A simulation started
        ahead (:meth:`ahead`) is used as it is, and the others are asked in that child while
        it lives (its worlds are reused and saved); one whose child died is asked again."""
        pending = [target for target in targets if not self._registered(target)]
        for index, target in enumerate(pending):
            last = index == len(pending) - 1  # fabricated values saved once, after the last
            answer = None if last else self._simulated_ahead(target)
            if answer is None:
                role = AHEAD if AHEAD in self._pools else QUESTIONS
                answer = self._ask(target, ("simulate", None, None, None), save=last, role=role)
            if isinstance(answer, str):
                continue
            combined, limited = answer
            backend = self.session.backend
            if limited:
                backend.put_sim_hash(self.sims.limited_key(target), self.sims.version, limited)
            elif combined is not None:
                self.sims.register(target, combined)

    def ahead(self, targets: list[Target]) -> None:
        """Start simulating the targets whose cells were handed to worker processes
        (``--jobs N``, Pub/Sub) and whose SimHash is not registered, in a child of their own
        (the build's own questions, verdicts, never wait behind them): the builder only
        waits for the workers meanwhile, so :meth:`after_run` finds them done instead of
        simulating them one by one after the build. Nothing is registered here (only targets
        that ran are, after the build)."""
        for target in targets:
            if target.name in self._ahead or self._known(target):
                continue
            try:
                pool = self._child(AHEAD)
                request = self._request(target, ("simulate", None, None, None), save=False)
                future = pool.submit(_serve, *request)
            except Exception:  # noqa: BLE001 - a broken child: after_run asks the usual way
                return
            self._ahead[target.name] = (future, pool, _processes(pool))

    def _known(self, target: Target) -> bool:
        """Whether ``target``'s SimHash is registered under its current key (no writes)."""
        key = self.sims.sim_key(target)
        return self.session.backend.get_sim_hash(key, self.sims.version) is not None

    def _simulated_ahead(self, target: Target) -> Any:
        """The answer of ``target``'s simulation started ahead; None when there is none or
        its child died (its death may be another target's: the caller asks again, alone)."""
        started = self._ahead.pop(target.name, None)
        if started is None:
            return None
        future, pool, processes = started
        return self._receive(target, future, processes, pool, again=True)

    def _registered(self, target: Target) -> bool:
        """Whether ``target``'s SimHash is registered under its current key; if so, what
        goes with it (its deps' keys, the code's snapshot) is written again."""
        known = self.session.backend.get_sim_hash(self.sims.sim_key(target), self.sims.version)
        if known is None:
            return False
        self.sims.register(target, str(known))
        return True

    def simulate(self, target: Target, alone: bool = False) -> dict[str, Any] | str:
        """``btbuild sim``'s answer for ``target``: ``{"row": {sim_hash, contexts, warning?},
        "notes": [...], "fabricator": version}``, or why there is none (a str)."""
        answer: dict[str, Any] | str = self._ask(
            target, ("sim-alone" if alone else "sim", None, None, None)
        )
        return answer

    def close(self) -> None:
        # a simulation started ahead and never asked for (the build stopped) is not waited for
        unused = any(not future.done() for future, _, _ in self._ahead.values())
        self._ahead.clear()
        pools, self._pools = self._pools, {}
        for role, pool in pools.items():
            _stop(pool, kill=unused and role == AHEAD)

    # -- the child -------------------------------------------------------------------------

    def _verdict(self, target: Target, question: tuple[Any, ...]) -> Verdict:
        answer = self._ask(target, question)
        return unproven(answer) if isinstance(answer, str) else answer

    def _request(self, target: Target, question: tuple[Any, ...], save: bool) -> tuple[Any, ...]:
        """The arguments of :func:`_serve` for ``question`` about ``target``."""
        kind, record, adoption, day = question
        code = code_key(self.session.hashes[target.name])
        return (kind, target.name, code, self.window, save), record, adoption, day

    def _ask(
        self, target: Target, question: tuple[Any, ...], save: bool = True, role: str = QUESTIONS
    ) -> Any:
        """The answer of the child of ``role``, or why there is none (a str). ``save``: the
        child then keeps its fabricated values on disk for later processes (world_store.py)."""
        processes: list[Any] = []
        pool = self._pools.get(role)
        try:
            pool = self._child(role)
            future = pool.submit(_serve, *self._request(target, question, save))
            processes = _processes(pool)
        except BaseException as exc:  # noqa: BLE001 - answered as the child's failure below
            future = Future()
            future.set_exception(exc)
        return self._receive(target, future, processes, pool)

    def _receive(
        self,
        target: Target,
        future: Future[Any],
        processes: list[Any],
        pool: ProcessPoolExecutor | None,
        again: bool = False,
    ) -> Any:
        """The answer ``future`` brings (see :meth:`_ask`); ``again``: None instead of the
        answer of a child that died (a simulation started ahead: asked again, alone)."""
        try:
            version, answer, lines = future.result(timeout=ANSWER_SECONDS)
        except BrokenExecutor:
            self._drop(pool)
            return None if again else _died(target, processes)
        except AnswerTimeout:
            self._drop(pool)
            return f"the simulation of {target.label} did not finish within {ANSWER_SECONDS:g} s"
        except BaseException as exc:  # noqa: BLE001 - the child's failure is this verdict's reason
            from btbuild.execution.guard import raised_by_calc

            if isinstance(exc, KeyboardInterrupt) and not raised_by_calc(exc):
                raise  # a real Ctrl-C in the builder: the build stops
            first = next(iter(str(exc).splitlines()), "")
            return f"the simulation of {target.label} failed ({type(exc).__name__}: {first})"
        for line in lines:
            self.logs.add(line)
        if version is not None:
            self.sims.adopt_version(version)
        return answer

    def _child(self, role: str = QUESTIONS) -> ProcessPoolExecutor:
        """The child of ``role`` (QUESTIONS or AHEAD), started on first use."""
        if role not in self._pools:
            from btbuild.execution.liveness import start_worker

            self._pools[role] = ProcessPoolExecutor(
                max_workers=1,
                mp_context=get_context("spawn"),
                initializer=start_worker,  # ends with the builder
                initargs=(
                    os.getpid(),
                    f"{__name__}:_init_child",
                    str(self.session.root),
                    self.session.product_lines,
                ),
            )
        return self._pools[role]

    def _drop(self, pool: ProcessPoolExecutor | None) -> None:
        """End ``pool``'s child if it is still one of the judge's (the next question starts one)."""
        for role, mine in list(self._pools.items()):
            if mine is pool:
                del self._pools[role]
                _stop(pool, kill=True)


def _died(target: Target, processes: list[Any]) -> str:
    return (
        f"the simulation of {target.label} ended its process{_how(processes)} "
        "(calculation code called os._exit, crashed or ran out of memory)"
    )


def _processes(pool: ProcessPoolExecutor) -> list[Any]:
    return list(getattr(pool, "_processes", {}).values())


def _how(processes: list[Any]) -> str:
    """How the child ended: `` with exit code N`` or `` on signal NAME``, when known."""
    for process in processes:
        with suppress(Exception):
            process.join(1.0)
            code = process.exitcode
            if code is not None and code < 0:
                return f" on signal {signal.Signals(-code).name}"
            if code is not None:
                return f" with exit code {code}"
    return ""


def _stop(pool: ProcessPoolExecutor, kill: bool = False) -> None:
    """Shut the child down; ``kill``: it may hang or be dead already, end it by pid. A child
    that does not end within ``EXIT_SECONDS`` of being told to is killed too."""
    processes = _processes(pool)
    if kill:
        _kill(processes)
    pool.shutdown(wait=False, cancel_futures=True)  # (its own thread reaps the child)
    with suppress(OSError, ValueError):
        ended = connection.wait([process.sentinel for process in processes], EXIT_SECONDS)
        _kill([process for process in processes if process.sentinel not in ended])


def _kill(processes: list[Any]) -> None:
    for process in processes:
        with suppress(OSError, ValueError, AttributeError):
            if process.pid is not None and process.is_alive():
                os.kill(process.pid, signal.SIGKILL)


@contextmanager
def isolated_judge(session: Session, **options: Any) -> Iterator[Any]:
    """The judge a build uses: isolated, unless the cache lives in this process only (the
    ``memory`` backend, which a child could not see)."""
    if session.workspace.storage.backend == "memory":
        from btbuild.sim.judge import Judge
        from btbuild.sim.optimizer import after_run_callback

        judge = Judge(session, **options)
        judge.after_run = after_run_callback(session)  # type: ignore[attr-defined]  # the in-process judge gets the attribute the isolated one defines
        yield judge
        return
    isolated = IsolatedJudge(session, **options)
    try:
        yield isolated
    finally:
        isolated.close()


# -- in the child ----------------------------------------------------------------------------


def _init_child(root: str, product_lines: tuple[str, ...]) -> None:
    from btbuild.execution.guard import install_interrupt_flag, stdout_to_stderr_fd
    from btbuild.session import Session
    from btbuild.sim.judge import Judge

    install_interrupt_flag()
    stdout_to_stderr_fd()
    session = Session(Path(root), product_lines=product_lines)
    _CHILD["judge"] = Judge(session)
    _CHILD["logged"] = 0
    # run when the worker loop ends (multiprocessing's exit, before the interpreter's)
    Finalize(None, _quick_exit, args=(session,), exitpriority=100)


def _quick_exit(session: Session) -> None:
    """The child's end, once the builder closed it: every answer is sent and every value
    saved, so the interpreter's teardown is skipped: the fabricated worlds and modules
    (0.1-0.7 s the builder would wait for), and whatever calculation code left behind (a
    thread that never ends, an ``atexit`` handler that hangs)."""
    with suppress(Exception):
        session.close()
    for stream in (sys.stdout, sys.stderr):
        with suppress(Exception):
            stream.flush()
    os._exit(0)


def _serve(
    request: tuple[str, str, str, tuple[date | None, date | None, date | None], bool],
    record: CellRecord | None,
    adoption: Adoption | None,
    day: date | None,
) -> tuple[str | None, Any, list[str]]:
    """(fabricator version, answer, new log lines) for one question of the builder."""
    kind, name, builder_code, window, save = request
    judge = _CHILD["judge"]
    session = judge.session
    target = session.workspace.targets.get(name)
    if target is None or code_key(session.hashes[name]) != builder_code:
        answer: Any = f"the code of {name} changed during the build (the simulation saw other code)"
        return None, answer, []
    judge.first, judge.last, judge.prefer = window
    try:
        answer = _answer(judge, kind, target, record, adoption, day)
    except BaseException as exc:  # noqa: BLE001 - calculation code may raise anything here
        from btbuild.execution.guard import raised_by_calc

        if isinstance(exc, KeyboardInterrupt) and not raised_by_calc(exc):
            raise  # a real Ctrl-C
        first = next(iter(str(exc).splitlines()), "")
        answer = f"the simulation of {target.label} failed ({type(exc).__name__}: {first})"
    lines = judge.logs.lines[_CHILD["logged"] :]
    _CHILD["logged"] = len(judge.logs.lines)
    if save:
        save_all()  # fabricated values for the next process: build, verify or sim
    return judge.sims.version, answer, list(lines)


def _answer(
    judge: Any,
    kind: str,
    target: Target,
    record: CellRecord | None,
    adoption: Adoption | None,
    day: date | None,
) -> Any:
    name = target.name
    if kind in ("sim", "sim-alone"):
        return _command_answer(judge.session, name, alone=kind == "sim-alone")
    if kind == "simulate":
        result = judge.sims.result(target)
        if result is None:
            return f"the code of {target.label} cannot be loaded"
        return result.combined, result.limited
    assert record is not None
    if kind == "recheck":
        assert adoption is not None and day is not None
        judge.recheck[(name, day)] = adoption
        return judge.recheck_verdict(target, day, record)
    return judge(target, record, None)


def _command_answer(session: Session, name: str, *, alone: bool) -> dict[str, Any]:
    """What ``btbuild sim`` prints of one target (one runner per ``alone``, kept: the
    targets of one command share their upstreams' outputs)."""
    from btbuild.sim.degenerate import degenerate
    from btbuild.sim.runner import SimRunner

    runners = _CHILD.setdefault("runners", {})
    runner = runners.get(alone)
    if runner is None:
        runner = runners[alone] = SimRunner(
            session.workspace,
            session.plugins.root_sources(),
            predicates=session.plugins.segment_predicates,
            alone=alone,
        )
    result = runner.simulate(name)
    row: dict[str, Any] = {"sim_hash": result.combined, "contexts": len(result.contexts)}
    warning = degenerate(result)
    if warning:
        row["warning"] = warning
    fabricator = runner.fabricator
    return {"row": row, "notes": list(fabricator.notes), "fabricator": fabricator.version}


__all__ = ["ANSWER_SECONDS", "IsolatedJudge", "isolated_judge"]
