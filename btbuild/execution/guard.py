"""Calculation code cannot take the build down or pollute its output.

* ``SystemExit`` (``sys.exit()``, ``exit()``) and ``KeyboardInterrupt`` *raised by calculation
  code* are failures of the item that raised them, like any exception. A real Ctrl-C is told
  apart by :func:`install_interrupt_flag`: its SIGINT handler notes the signal before raising,
  so :func:`raised_by_calc` lets it through and the build stops (exit 130).
* Output: while cells run (:func:`calc_output`), ``sys.stdout`` is the process's stderr, so a
  ``print()`` in a calculation is part of its log and ``--format json`` output stays JSON.
  Worker processes (``--jobs``) also point file descriptor 1 at stderr
  (:func:`stdout_to_stderr_fd`), which catches writes below Python too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType

_STATE = {"interrupted": False}


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    _STATE["interrupted"] = True
    raise KeyboardInterrupt


def install_interrupt_flag() -> None:
    """Make a real Ctrl-C distinguishable from a KeyboardInterrupt raised by calculation code
    (only from the main thread, and only over Python's default SIGINT handler)."""
    _STATE["interrupted"] = False
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _on_sigint)


@contextlib.contextmanager
def interrupt_flag() -> Iterator[None]:
    """:func:`install_interrupt_flag` for the duration of a command (the CLI's ``main``)."""
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGINT) if main else None
    install_interrupt_flag()
    try:
        yield
    finally:
        if main and previous is signal.default_int_handler:
            signal.signal(signal.SIGINT, previous)


def raised_by_calc(exc: BaseException) -> bool:
    """True when ``exc``, caught around calculation code, is that code's failure: any
    Exception, SystemExit, or a KeyboardInterrupt that no SIGINT caused."""
    if isinstance(exc, Exception | SystemExit):
        return True
    return isinstance(exc, KeyboardInterrupt) and not _STATE["interrupted"]


def describe(exc: BaseException) -> str:
    """``SystemExit: 3`` rather than an empty message for ``sys.exit(3)``."""
    if isinstance(exc, SystemExit):
        return f"SystemExit: sys.exit({exc.code!r}) called by the calculation"
    if isinstance(exc, KeyboardInterrupt):
        return "KeyboardInterrupt raised by the calculation"
    return f"{type(exc).__name__}: {exc}"


@contextlib.contextmanager
def calc_output() -> Iterator[None]:
    """Send what calculation code prints to stderr (its log) instead of stdout."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


def stdout_to_stderr_fd() -> None:
    """In a worker process: file descriptor 1 becomes stderr for good (workers print nothing
    of their own to stdout; the builder's stdout is its report)."""
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
        os.dup2(sys.stderr.fileno(), 1)
