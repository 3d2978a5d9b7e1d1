"""``ctx.log`` of simulation and replay runs, captured instead of printed among a build's lines.

A calculation's ``ctx.log`` in a real build is the logger ``btbuild.calc.<target>``. When the
same code runs to prove a change cosmetic (fabricated worlds, replay of stored cells), what it
logs is about fabricated or sampled contexts, not the build: it goes to a private logger (not
registered with :mod:`logging`, not propagating) whose records are kept, at most
``MAX_LINES`` of them, and shown by ``--verbose``.
"""

from __future__ import annotations

import logging

MAX_LINES = 2000


class _Keep(logging.Handler):
    def __init__(self, capture: LogCapture):
        super().__init__(logging.DEBUG)
        self.capture = capture

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string in user code is its own line
            text = f"{record.msg!r} (unformattable arguments)"
        self.capture.add(f"{record.levelname.lower()} {record.name}: {text}")


class LogCapture:
    """Keeps what simulated calculations log; one private logger per target."""

    def __init__(self, origin: str = "sim"):
        self.origin = origin
        self.lines: list[str] = []
        self.dropped = 0
        self._loggers: dict[str, logging.Logger] = {}
        self._handler = _Keep(self)

    def logger(self, target_name: str) -> logging.Logger:
        found = self._loggers.get(target_name)
        if found is None:
            found = logging.Logger(f"btbuild.{self.origin}.{target_name}", logging.DEBUG)
            found.propagate = False
            found.addHandler(self._handler)
            self._loggers[target_name] = found
        return found

    def add(self, line: str) -> None:
        if len(self.lines) < MAX_LINES:
            self.lines.append(line)
        else:
            self.dropped += 1

    def render(self) -> list[str]:
        more = [f"... {self.dropped} more log line(s) dropped"] if self.dropped else []
        return self.lines + more
