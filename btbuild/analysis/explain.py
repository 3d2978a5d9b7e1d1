"""``btbuild explain``: why one cell will run or be skipped, input by input.

The planner decides the cell exactly as a dry-run build would (its deps first, in graph
order), then the cell with every input it compared; the explanation puts each input's
recorded value next to its current one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from btbuild.analysis.cells import Change, Decision, side_by_side
from btbuild.analysis.planner import Planner
from btbuild.analysis.views import RecordView
from btbuild.workspace.model import Target


@dataclass(frozen=True)
class Explanation:
    label: str
    day: date
    decision: Decision
    record: RecordView | None  # the cell's cache record, None when it never ran
    inputs: tuple[Change, ...]  # every input compared, recorded -> current (none: not compared)

    def to_json(self) -> dict[str, Any]:
        record = self.record
        return {
            "label": self.label,
            "date": self.day.isoformat(),
            "status": self.decision.status,
            "reason": self.decision.reason,
            "detail": self.decision.detail or None,
            "record": None
            if record is None
            else {
                "status": record.status,
                "result_hash": record.result_hash,
                "attempts": record.attempts,
                "last_error": record.last_error,
                "category": record.category,
            },
            "components": [
                {
                    "component": row.component,
                    "recorded": row.old,
                    "current": row.new,
                    "same": row.old == row.new,
                }
                for row in self.inputs
            ],
        }


def explain_cell(planner: Planner, target: Target, day: date) -> Explanation:
    """Settle every other target of the plan on ``day`` (graph order, as a build decides
    them), then decide ``target``'s cell with details."""
    for other in planner.targets.values():
        if other.label != target.label:
            planner.settle(other, day)
    decision, _task, inputs = planner.decide(target, day)
    record = planner.cache.full_record(target.name, day)
    rows: list[Change] = []
    if inputs is not None:
        rows = side_by_side(
            dict(record.components) if record else {},
            record.root_fingerprints if record else {},
            record.dep_results if record else {},
            inputs,
        )
    return Explanation(target.label, day, decision, record, tuple(rows))
