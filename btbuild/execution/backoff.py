"""Retries of a failed cell back off exponentially, whatever the executor.

A cell that failed (and is not dead-lettered) is tried again after ``[execution]
retry_backoff`` seconds, doubling with each attempt, at most 600 s (Pub/Sub's ceiling, and
the retry policy ``btbuild deploy`` gives the workers' subscription). Pub/Sub workers hold
the task's message back for that long; a local build (the next one: a local build makes one
attempt per cell) waits until the retry is due. The failed record's ``last_error`` says which
attempt failed and when the next one is due, so ``status`` and ``explain`` show it:
``... (attempt 1 of 3; next retry at 09:41:07 UTC, in 10 s)``.
"""

from __future__ import annotations

import time

from btbuild.storage.records import FAILED, CellRecord

MAX_BACKOFF_SECONDS = 600  # Pub/Sub's ceiling for retry back-off and ack deadlines


def backoff_seconds(attempt: int, first: float) -> float:
    """The pause before retry number ``attempt`` (1 = the first retry): ``first``, doubling
    each time, capped at Pub/Sub's 600 s. The same rule as the subscription's retry policy
    (minimum ``first``, maximum 600 s)."""
    return float(min(MAX_BACKOFF_SECONDS, first * 2 ** max(0, attempt - 1)))


def retry_note(attempts: int, max_attempts: int, first: float, now: float | None = None) -> str:
    """What a failed attempt's ``last_error`` ends with: the attempt and when the next is due."""
    delay = backoff_seconds(attempts, first)
    due = time.strftime("%H:%M:%S", time.gmtime((time.time() if now is None else now) + delay))
    return f"(attempt {attempts} of {max_attempts}; next retry at {due} UTC, in {delay:.0f} s)"


def retry_due(record: CellRecord | None, key: str, first: float) -> float:
    """When the next attempt at a failed cell with the input key ``key`` is due (epoch
    seconds): the back-off after its latest failed attempt. 0 when the cell is not failed, or
    failed with other inputs (a changed cell starts a fresh count of attempts, at once)."""
    if record is None or record.status != FAILED or record.attempts < 1:
        return 0.0
    if record.attempt_key not in (None, key):
        return 0.0
    return record.updated_at + backoff_seconds(record.attempts, first)
