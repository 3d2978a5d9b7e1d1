"""What the top-level options say, handed to every command as click's ``ctx.obj``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from btbuild.errors import UsageError

ACK_DEADLINE_RANGE = (10, 600)  # seconds: what Pub/Sub accepts for a subscription

if TYPE_CHECKING:  # the session (and the stages it wires) is imported when a command opens one
    from btbuild.session import Session


@dataclass(frozen=True)
class Options:
    workspace: str | None  # --workspace DIR (default: walk up from the current folder)
    debug: bool  # --debug: tracebacks instead of one-line errors

    def session(self, *, product_lines: Iterable[str] = ()) -> Session:
        """A session on the workspace; use it as a context manager (``with``) so its cache
        is closed."""
        from btbuild.session import Session

        return Session.discover(self.workspace, product_lines=product_lines)


def check_ack_deadline(seconds: int) -> int:
    """``--ack-deadline`` of ``btbuild worker`` and ``btbuild deploy``: within Pub/Sub's range."""
    low, high = ACK_DEADLINE_RANGE
    if not low <= seconds <= high:
        raise UsageError(
            f"--ack-deadline must be between {low} and {high} seconds (Pub/Sub's range), got {seconds}"
        )
    return seconds
