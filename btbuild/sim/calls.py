"""Calling calculation code under simulation: time limits, failures as outcomes, private copies.

Every way a ``process(ctx)`` call can end is an outcome of the call (:func:`call_limited`): a
value, an exception's type (``SystemExit`` and a ``KeyboardInterrupt`` raised by the code
included; a real Ctrl-C still stops the command, see :mod:`btbuild.execution.guard`) or a
time-out. Some outcomes depend on the machine rather than on the code (``LIMITED``: a
time-out, ``MemoryError``, ``RecursionError``): they are never evidence that two versions of
the code behave alike or differently (:func:`limit_reason` says why).
"""

from __future__ import annotations

import _signal
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from btbuild.execution.guard import raised_by_calc
from btbuild.sim.canonical import canonical, raised

DEFAULT_TIME_LIMIT = 1.0  # seconds of CPU time per process(ctx) call
WALL_FACTOR = 10  # and this many times as much wall time (sleeping or blocked calls)
MAX_TIMEOUTS = 3
# outcomes that depend on the machine (load, memory, stack depth), not only on the code
LIMITED = frozenset({"timeout", "MemoryError", "RecursionError"})


class _Timeout(BaseException):
    """Raised into a calculation by the alarm; a BaseException so ``except Exception`` in user
    code cannot swallow it."""


@dataclass(frozen=True)
class Failed:
    """An output that is not a value: an exception type, "timeout" or a blocked upstream."""

    kind: str
    message: str = ""

    def canonical(self) -> dict[str, str]:
        if self.kind.startswith("blocked:"):
            return {"$blocked": self.kind.split(":", 1)[1]}
        return raised(self.kind)

    @property
    def limited(self) -> bool:
        """Whether this outcome depends on the machine rather than on the code alone."""
        return self.kind in LIMITED


def limit_reason(label: str, failure: Failed, seconds: float | None) -> str:
    """Why an outcome proves nothing, naming the target whose call it was."""
    if failure.kind == "timeout":
        limit = (
            f"{seconds:g} s of CPU time, {seconds * WALL_FACTOR:g} s of wall time"
            if seconds is not None
            else "its time limit"
        )
        return (
            f"{label} timed out on fabricated data (no answer within {limit}); "
            "a time-out depends on the machine's load, so it proves nothing"
        )
    return (
        f"{label} raised {failure.kind} on fabricated data; it depends on the machine "
        "(memory, stack depth), so it proves nothing"
    )


def is_failure(output: Any) -> bool:
    return (
        isinstance(output, dict)
        and len(output) == 1
        and next(iter(output)) in ("$raised", "$blocked")
    )


class Alarm:
    """Whether the call's alarm fired (even if the code caught the exception it raised)."""

    def __init__(self) -> None:
        self.fired = False

    def __call__(self, signum: int, frame: Any) -> None:
        self.fired = True
        raise _Timeout()


_ALARMS = hasattr(signal, "setitimer")


def call_limited(process: Callable[[Any], Any], ctx: Any, seconds: float | None) -> Any:
    """``process(ctx)`` within ``seconds`` of CPU time (``ITIMER_PROF``: a loaded machine
    barely changes it) and ``WALL_FACTOR`` times as much wall time (``ITIMER_REAL``: sleeping
    or blocked code): its value, or :class:`Failed` (its exception, or "timeout" when the
    alarm fired, even if the code caught it). A real Ctrl-C propagates; ``SystemExit`` and a
    ``KeyboardInterrupt`` raised by the code are its failures. The handlers are installed for
    each call (the code may have replaced them), through the C functions behind
    ``signal.signal``: the wrapper's enum conversions cost more than the call."""
    alarm = Alarm()
    timed = (
        seconds is not None and _ALARMS and threading.current_thread() is threading.main_thread()
    )
    previous: tuple[Any, Any] = (None, None)
    try:
        if timed:
            assert seconds is not None
            previous = _signal.signal(signal.SIGALRM, alarm), _signal.signal(signal.SIGPROF, alarm)
            signal.setitimer(signal.ITIMER_PROF, seconds)
            signal.setitimer(signal.ITIMER_REAL, seconds * WALL_FACTOR)
        try:
            value = process(ctx)
        finally:
            if timed:
                try:
                    signal.setitimer(signal.ITIMER_REAL, 0)
                    signal.setitimer(signal.ITIMER_PROF, 0)
                finally:  # (even when the alarm fires right now)
                    _signal.signal(signal.SIGALRM, previous[0])
                    _signal.signal(signal.SIGPROF, previous[1])
    except _Timeout:
        return Failed("timeout")
    except BaseException as exc:  # noqa: BLE001 - calculation code: every way out is an outcome
        if isinstance(exc, KeyboardInterrupt) and not raised_by_calc(exc):
            raise  # a real Ctrl-C
        return Failed("timeout") if alarm.fired else Failed(type(exc).__name__, str(exc)[:200])
    return Failed("timeout") if alarm.fired else value


def fresh(value: Any) -> Any:
    """A private copy of a JSON-like value (faster than ``copy.deepcopy``): every dict and
    list (subclasses included) copied as a plain one, other values shared. Leaves are not
    recursed into (most of a value's nodes: a third of the time of a warm simulation went to
    those calls)."""
    kind = type(value)
    if kind is dict:
        return {key: item if type(item) in _LEAVES else fresh(item) for key, item in value.items()}
    if kind is list:
        return [item if type(item) in _LEAVES else fresh(item) for item in value]
    if isinstance(value, dict):
        return {key: fresh(item) for key, item in value.items()}
    if isinstance(value, list):
        return [fresh(item) for item in value]
    return value


_LEAVES = frozenset((str, int, float, bool, type(None)))


def usable(value: Any) -> bool:
    """Whether a build would store ``value`` (so a dependent could read it)."""
    output = canonical(value)
    return not _has_marker(output)


def _has_marker(output: Any) -> bool:
    if isinstance(output, dict):
        if len(output) == 1 and next(iter(output)) in ("$float", "$invalid"):
            return True
        return any(_has_marker(item) for item in output.values())
    if isinstance(output, list):
        return any(_has_marker(item) for item in output)
    return False


__all__ = [
    "DEFAULT_TIME_LIMIT",
    "LIMITED",
    "MAX_TIMEOUTS",
    "Failed",
    "call_limited",
    "fresh",
    "is_failure",
    "limit_reason",
    "usable",
]
