"""Fabricating data inside a traced, time-limited ``process`` call.

The fabricator draws lazily, when a calculation first reads a root. That work belongs neither
to the coverage of the change (it would run under coverage.py's tracer, several times slower)
nor to the call's time limit (a cold fabricator on a loaded machine must not time a
calculation out: the output would depend on the machine). :func:`fabricating` suspends both.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def untraced() -> Iterator[None]:
    """Suspend coverage.py's C tracer for the block.

    Only a tracer with ``stop()``/``start()`` (coverage.py's ``CTracer``) is suspended: it is
    stopped and started again in C, so the frames already running stay traced. Swapping
    ``sys.settrace`` instead would silently stop line events in the calling frames.
    """
    tracer = sys.gettrace()
    if tracer is None or not (hasattr(tracer, "stop") and hasattr(tracer, "start")):
        yield
        return
    tracer.stop()
    try:
        yield
    finally:
        tracer.start()


@contextmanager
def fabricating() -> Iterator[None]:
    """Neither traced nor counted in the current call's time limit (nested blocks are free)."""
    wall = cpu = 0.0
    if hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread():
        wall = signal.setitimer(signal.ITIMER_REAL, 0)[0]
        cpu = signal.setitimer(signal.ITIMER_PROF, 0)[0]  # the call's CPU-time limit
    try:
        with untraced():
            yield
    finally:
        if cpu > 0:
            signal.setitimer(signal.ITIMER_PROF, cpu)
        if wall > 0:
            signal.setitimer(signal.ITIMER_REAL, wall)


__all__ = ["fabricating", "untraced"]
