"""The alert outbox: an alert recorded in the same transaction as the commit it announces.

An ``alert = true`` target's commit that changes its result stores a :class:`PendingAlert`
beside the cell record, atomically with it (:meth:`Backend._commit` with ``alert=True``).
The committing process publishes it right after the commit and then deletes it; a process
killed in between, or a publish that fails, leaves it pending, and the next build or
``btbuild worker`` publishes it first (btbuild/execution/commits.py). So every committed
change is published at least once; consumers may see a message twice and deduplicate on its
``alert_id`` attribute (:attr:`PendingAlert.alert_id`).

A backend stores pending alerts when it sets ``supports_outbox`` and implements
``pending_alerts``/``_delete_alert`` and a transaction ``put_alert``
(btbuild/storage/primitives.py); SQLite, Firestore and the memory backend do. A backend plugin
that does not is still correct for results; its alerts are published after the commit without
an outbox entry, at most once (see docs/plugins.md).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class PendingAlert:
    """One committed change of an alert target's result, not yet known to be published."""

    target: str  # the target's name
    date: str
    generation: str  # the commit's generation: unique per commit
    result_hash: str | None
    previous_result_hash: str | None  # None for a first result
    kind: str | None
    item_count: int
    created: float  # epoch seconds of the commit

    @property
    def key(self) -> str:
        """The entry's id in the outbox (one per commit)."""
        return f"{self.target}__{self.date}__{self.generation}"

    @property
    def alert_id(self) -> str:
        """The message attribute consumers deduplicate on: the cell, its result hash and the
        commit's generation (the same result committed again later, after a change in
        between, is a new alert)."""
        return f"{self.target}/{self.date}/{self.result_hash}/{self.generation}"

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: Any) -> PendingAlert | None:
        """The entry stored as ``text``; None when it is unreadable (it is then dropped)."""
        try:
            data = json.loads(text)
            alert = cls(
                str(data["target"]),
                str(data["date"]),
                str(data["generation"]),
                _optional(data["result_hash"]),
                _optional(data["previous_result_hash"]),
                _optional(data["kind"]),
                int(data["item_count"]),
                float(data["created"]),
            )
        except (KeyError, TypeError, ValueError):
            return None
        return alert


def _optional(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"expected a string or null, got {type(value).__name__}")
    return value
