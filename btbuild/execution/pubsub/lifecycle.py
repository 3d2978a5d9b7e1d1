"""A worker's delivery lifecycle: graceful stop on SIGTERM / SIGINT, and the ack deadline of
the message it is working on.

SIGTERM and SIGINT (:class:`GracefulStop`) raise :class:`Stopping` in the main thread: the
runner gives the running group's unfinished cells back, the worker puts the task back on the
queue and exits 0, all within ``--grace`` seconds (then it exits at once, 143). While a group
runs, :class:`AckExtender` keeps extending its message's ack deadline.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from typing import Any

GRACE_SECONDS = 20.0  # default bound on giving work back after SIGTERM / SIGINT


class Stopping(BaseException):  # noqa: N818 - like KeyboardInterrupt: not an error
    """Raised in the main thread by SIGTERM / SIGINT: give the current work back, then exit."""


class GracefulStop:
    """SIGTERM / SIGINT handlers for the worker's main thread: the first signal raises
    :class:`Stopping` and arms a watchdog that ends the process after ``grace`` seconds; a
    second signal ends it at once."""

    def __init__(self, grace: float, log: Callable[[str], None]):
        self.grace = grace
        self.log = log
        self.signal_name: str | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if self.signal_name is not None:
            self.log(f"{name} again: exiting now")
            os._exit(128 + signum)
        self.signal_name = name
        self.log(f"{name}: giving the current task back (at most {self.grace:.0f} s)")
        timer = threading.Timer(self.grace, self._overdue, args=(signum,))
        timer.daemon = True
        timer.start()
        raise Stopping(name)

    def _overdue(self, signum: int) -> None:
        self.log(f"giving back took longer than {self.grace:.0f} s: exiting now")
        os._exit(128 + signum)

    def __enter__(self) -> GracefulStop:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


class AckExtender:
    """Keeps extending one message's ack deadline while the worker runs its group."""

    def __init__(self, subscriber: Any, subscription: str, ack_id: str, deadline: int):
        self.args = (subscriber, subscription, ack_id, deadline)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        subscriber, subscription, ack_id, deadline = self.args
        wait = 0.0  # at once: the subscription's own deadline may be longer than this worker's
        while not self._stop.wait(wait):
            wait = max(1.0, deadline / 3)
            try:
                set_deadline(subscriber, subscription, ack_id, deadline)
            except Exception:  # noqa: BLE001, S112 - a missed extension only risks a duplicate delivery
                continue

    def __enter__(self) -> AckExtender:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def set_deadline(subscriber: Any, subscription: str, ack_id: str, seconds: float) -> None:
    subscriber.modify_ack_deadline(
        request={
            "subscription": subscription,
            "ack_ids": [ack_id],
            "ack_deadline_seconds": int(min(600, max(0, round(seconds)))),
        }
    )
