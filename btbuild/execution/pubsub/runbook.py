"""The run and task documents in Firestore that track a distributed build's completion."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from btbuild.execution.pubsub.wire import outcome_from_json, outcome_to_json
from btbuild.execution.tasks import CellOutcome, GroupTask
from btbuild.storage.firestore import FirestoreBackend
from btbuild.storage.records import DEAD_LETTER, RUNNING


class RunBook:
    """The run and task documents in Firestore (shared by the dispatcher and the workers)."""

    def __init__(self, backend: FirestoreBackend):
        self.backend = backend
        self.runs = backend.collection("dispatch")

    def run_ref(self, run_id: str) -> Any:
        return self.runs.document(run_id)

    def task_ref(self, run_id: str, task_id: str) -> Any:
        return self.runs.document(run_id).collection("tasks").document(task_id)

    def open_run(self, run_id: str) -> None:
        self.run_ref(run_id).set(
            {"open": True, "published": 0, "pending": 0, "finished": 0, "created": time.time()}
        )

    def close_run(self, run_id: str) -> None:
        self.run_ref(run_id).update({"open": False})

    def published(self, run_id: str, task_id: str) -> None:
        """Count a task before its message is published: one atomic batch whose counters are
        server-side increments, so it never contends with workers finishing other tasks."""
        from google.cloud.firestore import Increment

        batch = self.backend.client.batch()
        batch.set(
            self.task_ref(run_id, task_id), {"final": False, "deliveries": 0, "outcomes": "{}"}
        )
        batch.update(self.run_ref(run_id), {"published": Increment(1), "pending": Increment(1)})
        with self.backend._calling(f"count task {task_id} of run {run_id}"):
            batch.commit()

    def begin(self, run_id: str, task_id: str) -> tuple[int, dict[str, CellOutcome]] | None:
        """A worker starts one delivery: (delivery count, outcomes settled so far), or None
        when there is nothing to do (the run is over or the task is already final)."""

        run = self.run_ref(run_id).get()  # "open" only ever turns false: no need to lock it

        def body(transaction: Any) -> tuple[int, dict[str, CellOutcome]] | None:
            task = self.task_ref(run_id, task_id).get(transaction=transaction)
            if not run.exists or not (run.to_dict() or {}).get("open") or not task.exists:
                return None
            data = task.to_dict() or {}
            if data.get("final"):
                return None
            deliveries = int(data.get("deliveries", 0)) + 1
            transaction.update(self.task_ref(run_id, task_id), {"deliveries": deliveries})
            return deliveries, outcomes_of(data.get("outcomes"))

        return self.backend._transact(f"start task {task_id} of run {run_id}", body)

    def save(
        self,
        run_id: str,
        task_id: str,
        outcomes: Mapping[str, CellOutcome],
        *,
        final: bool,
        worker: str,
    ) -> bool:
        """Store a task's outcomes; ``final`` also decrements the run's pending count, once.
        False when another delivery finalized the task first."""

        from google.cloud.firestore import Increment

        def body(transaction: Any) -> bool:
            task = self.task_ref(run_id, task_id).get(transaction=transaction)
            if not task.exists or (task.to_dict() or {}).get("final"):
                return False
            if final:  # server-side increments: the run document is written, never read here
                transaction.update(
                    self.run_ref(run_id), {"pending": Increment(-1), "finished": Increment(1)}
                )
            encoded = json.dumps(
                {name: outcome_to_json(o) for name, o in outcomes.items()}, sort_keys=True
            )
            transaction.update(
                self.task_ref(run_id, task_id),
                {"final": final, "outcomes": encoded, "worker": worker},
            )
            return True

        return self.backend._transact(f"finish task {task_id} of run {run_id}", body)

    def dead_letter(
        self,
        group: GroupTask,
        task_id: str,
        settled: Mapping[str, CellOutcome],
        error: str,
        worker: str,
    ) -> bool:
        """Finalize a poison task: every unsettled cell becomes ``dead_letter``."""
        outcomes = dict(settled)
        for cell in group.cells:
            if cell.name in outcomes:
                continue
            iso = cell.day.isoformat()
            record = self.backend.get_cell(cell.name, iso)
            if record is None or record.status == RUNNING:  # a crashed worker's lease: end it
                self.backend.put_cell_status(
                    cell.name,
                    iso,
                    DEAD_LETTER,
                    last_error=error,
                    now=max(time.time(), record.lease_expires + 1 if record else 0),
                )
            else:
                self.backend.put_cell_status(cell.name, iso, DEAD_LETTER, last_error=error)
            outcomes[cell.name] = CellOutcome(
                cell.name, cell.day, "dead_letter", cell.reason, error=error
            )
        return self.save(group.run_id, task_id, outcomes, final=True, worker=worker)


def outcomes_of(encoded: Any) -> dict[str, CellOutcome]:
    try:
        data = json.loads(encoded) if isinstance(encoded, str) else {}
        return {str(name): outcome_from_json(value) for name, value in data.items()}
    except (ValueError, KeyError, TypeError):
        return {}
