"""The run and task documents in Firestore that track a distributed build's completion."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from btbuild.errors import StorageError
from btbuild.execution.pubsub.wire import outcome_from_json, outcome_to_json
from btbuild.execution.tasks import CellOutcome, GroupTask
from btbuild.storage.base import Backend
from btbuild.storage.documents import RunDocuments
from btbuild.storage.records import DEAD_LETTER, RUNNING
from btbuild.vocabulary import Status


@dataclass(frozen=True)
class TaskState:
    """One delivery's view of its task document, as :meth:`RunBook.begin` found it."""

    deliveries: int  # counted deliveries, this one included (give-backs are not counted)
    starts: int  # every delivery that started, given back or not
    crashed: bool  # the previous delivery never ended: its worker died
    settled: dict[str, CellOutcome]  # outcomes of cells earlier deliveries finished
    republish_children: bool = False  # split, but its children may not have been published


class RunBook:
    """The run and task documents in Firestore (shared by the dispatcher and the workers)."""

    def __init__(self, backend: Backend):
        if not isinstance(backend, RunDocuments):
            raise StorageError(
                f"{type(backend).__name__} cannot keep the run documents of a distributed build "
                '(it needs [storage] backend = "firestore")'
            )
        self.backend = backend
        self.documents: RunDocuments = backend
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

        batch = self.documents.client.batch()
        batch.set(
            self.task_ref(run_id, task_id), {"final": False, "deliveries": 0, "outcomes": "{}"}
        )
        batch.update(self.run_ref(run_id), {"published": Increment(1), "pending": Increment(1)})
        with self.documents.calling(f"count task {task_id} of run {run_id}"):
            batch.commit()

    def begin(self, run_id: str, task_id: str, owner: str) -> TaskState | None:
        """A worker starts one delivery: the task's state, or None when there is nothing to
        do (the run is over, the task is final, or it was split and its children are out).
        ``in_flight`` marks the delivery as running until :meth:`save`, :meth:`give_back`
        or :meth:`split` ends it: a delivery that finds it still set knows its predecessor's
        worker died."""

        run = self.run_ref(run_id).get()  # "open" only ever turns false: no need to lock it

        def body(transaction: Any) -> TaskState | None:
            ref = self.task_ref(run_id, task_id)
            task = ref.get(transaction=transaction)
            if not run.exists or not (run.to_dict() or {}).get("open") or not task.exists:
                return None
            data = task.to_dict() or {}
            if data.get("final"):
                return None
            if data.get("split"):
                if data.get("children_published"):
                    return None
                return TaskState(0, 0, False, outcomes_of(data.get("outcomes")), True)
            deliveries = int(data.get("deliveries", 0)) + 1
            starts = int(data.get("starts", 0)) + 1
            transaction.update(
                ref, {"deliveries": deliveries, "starts": starts, "in_flight": owner}
            )
            crashed = bool(data.get("in_flight"))
            return TaskState(deliveries, starts, crashed, outcomes_of(data.get("outcomes")))

        return self.documents.transact(f"start task {task_id} of run {run_id}", body)

    def save(
        self,
        run_id: str,
        task_id: str,
        outcomes: Mapping[str, CellOutcome],
        *,
        final: bool,
        worker: str,
    ) -> bool:
        """Store a task's outcomes and end its delivery; ``final`` also decrements the run's
        pending count, once (for a child of a split task: its parent's, once every child is
        final). False when another delivery finalized the task first."""

        from google.cloud.firestore import Increment

        def body(transaction: Any) -> bool:
            ref = self.task_ref(run_id, task_id)
            task = ref.get(transaction=transaction)
            data = (task.to_dict() or {}) if task.exists else {}
            if not task.exists or data.get("final") or data.get("split"):
                return False
            parent_id = data.get("parent") if final else None
            parent = None
            if isinstance(parent_id, str):
                parent = self.task_ref(run_id, parent_id).get(transaction=transaction)
            if parent is not None and parent.exists:
                finished = self._settle_child(transaction, run_id, parent, task_id, outcomes)
            else:
                finished = final
            if finished:  # server-side increments: the run document is written, never read here
                transaction.update(
                    self.run_ref(run_id), {"pending": Increment(-1), "finished": Increment(1)}
                )
            transaction.update(
                ref,
                {
                    "final": final,
                    "outcomes": _encode(outcomes),
                    "worker": worker,
                    "in_flight": None,
                },
            )
            return True

        return self.documents.transact(f"finish task {task_id} of run {run_id}", body)

    def _settle_child(
        self,
        transaction: Any,
        run_id: str,
        parent: Any,
        task_id: str,
        outcomes: Mapping[str, CellOutcome],
    ) -> bool:
        """Fold a final child's outcomes into its split parent; True when that finalized
        the parent (its last open child)."""
        data = parent.to_dict() or {}
        merged = outcomes_of(data.get("outcomes")) | dict(outcomes)
        open_children = [child for child in data.get("open_children", []) if child != task_id]
        done = not open_children and not data.get("final")
        transaction.update(
            parent.reference,
            {
                "outcomes": _encode(merged),
                "open_children": open_children,
                "final": done or data.get("final", False),
            },
        )
        return done

    def give_back(self, run_id: str, task_id: str, settled: Mapping[str, CellOutcome]) -> None:
        """End an interrupted delivery (SIGTERM, SIGINT) without counting it."""
        from google.cloud.firestore import Increment

        def body(transaction: Any) -> None:
            ref = self.task_ref(run_id, task_id)
            task = ref.get(transaction=transaction)
            data = (task.to_dict() or {}) if task.exists else {}
            if task.exists and not data.get("final") and not data.get("split"):
                merged = outcomes_of(data.get("outcomes")) | dict(settled)
                transaction.update(
                    ref,
                    {"in_flight": None, "deliveries": Increment(-1), "outcomes": _encode(merged)},
                )

        self.documents.transact(f"give back task {task_id} of run {run_id}", body)

    def split(
        self,
        run_id: str,
        task_id: str,
        children: list[str],
        settled: Mapping[str, CellOutcome],
    ) -> bool:
        """Replace a task by one child task per unsettled cell (fault isolation after its
        worker died): the children's documents are created, the parent waits for them.
        False when the task was finalized or split meanwhile."""

        def body(transaction: Any) -> bool:
            ref = self.task_ref(run_id, task_id)
            task = ref.get(transaction=transaction)
            data = (task.to_dict() or {}) if task.exists else {}
            if not task.exists or data.get("final") or data.get("split"):
                return False
            for child in children:
                transaction.set(
                    self.task_ref(run_id, child),
                    # starts = 1: the parent's deliveries already tried the cell
                    {
                        "final": False,
                        "deliveries": 0,
                        "starts": 1,
                        "outcomes": "{}",
                        "parent": task_id,
                    },
                )
            transaction.update(
                ref,
                {
                    "split": True,
                    "children_published": False,
                    "open_children": list(children),
                    "in_flight": None,
                    "outcomes": _encode(settled),
                },
            )
            return True

        return self.documents.transact(f"split task {task_id} of run {run_id}", body)

    def children_published(self, run_id: str, task_id: str) -> None:
        with self.documents.calling(f"mark the children of task {task_id} published"):
            self.task_ref(run_id, task_id).update({"children_published": True})

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
                cell.name, cell.day, Status.DEAD_LETTER, cell.reason, error=error
            )
        return self.save(group.run_id, task_id, outcomes, final=True, worker=worker)


def _encode(outcomes: Mapping[str, CellOutcome]) -> str:
    return json.dumps({name: outcome_to_json(o) for name, o in outcomes.items()}, sort_keys=True)


def outcomes_of(encoded: Any) -> dict[str, CellOutcome]:
    try:
        data = json.loads(encoded) if isinstance(encoded, str) else {}
        return {str(name): outcome_from_json(value) for name, value in data.items()}
    except (ValueError, KeyError, TypeError):
        return {}
