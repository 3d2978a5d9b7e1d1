"""The dispatcher: :meth:`Scheduler.dispatch`'s ``submit`` over Pub/Sub."""

from __future__ import annotations

import sys
import threading
import time
from concurrent.futures import Future
from dataclasses import replace
from typing import Any

from btbuild.errors import StorageError, UsageError
from btbuild.execution.pubsub.resources import (
    Names,
    check_resources,
    first_line,
    publisher_client,
    subscriber_client,
)
from btbuild.execution.pubsub.runbook import RunBook, outcomes_of
from btbuild.execution.pubsub.wire import decode_task, encode_task, task_id_of
from btbuild.execution.runner import worker_id
from btbuild.execution.tasks import CellOutcome, GroupTask
from btbuild.storage.base import Backend
from btbuild.storage.documents import RunDocuments

POLL_SECONDS = 0.25
WAIT_NOTICE_SECONDS = 60.0  # no task finished for this long: say so on stderr (no workers?)


class Dispatcher:
    """``submit(group) -> Future`` for :meth:`Scheduler.dispatch` over Pub/Sub."""

    def __init__(
        self,
        backend: Backend,
        run_id: str,
        *,
        project: str | None = None,
    ):
        self.book = RunBook(backend)
        self.run_id = run_id
        self.names = Names(project or self.book.documents.project, self.book.documents.prefix)
        self.publisher = publisher_client()
        self.subscriber = subscriber_client()
        check_resources(  # never created here: `btbuild deploy` does that, once
            self.names,
            topics=[self.names.topic],
            subscriptions=[self.names.dead_subscription],
            publisher=self.publisher,
            subscriber=self.subscriber,
            who="the dispatcher (btbuild build --executor pubsub)",
        )
        self.futures: dict[str, tuple[Future[list[CellOutcome]], GroupTask]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._finished_seen = -1
        self._last_progress = self._last_notice = time.monotonic()
        self.book.open_run(run_id)
        self._poller = threading.Thread(
            target=self._poll_forever, name="btbuild-dispatch-poll", daemon=True
        )
        self._poller.start()
        # dead letters arrive on a streaming pull in the client's own threads: the poll
        # above never waits on them
        self._dead = self.subscriber.subscribe(
            self.names.dead_subscription, callback=self._on_dead_letter
        )

    def submit(self, group: GroupTask) -> Future[list[CellOutcome]]:
        group = replace(group, run_id=self.run_id)
        task_id = task_id_of(group)
        future: Future[list[CellOutcome]] = Future()
        with self._lock:
            self.futures[task_id] = (future, group)
            self._finished_seen = -1  # re-read task documents on the next poll
        self.book.published(self.run_id, task_id)
        try:
            self.publisher.publish(
                self.names.topic, encode_task(group), run_id=self.run_id, task_id=task_id
            ).result(timeout=60)
        except Exception as exc:
            raise StorageError(
                f"pubsub {self.names.topic}: cannot publish task {task_id}: {first_line(exc)}"
            ) from None
        return future

    def _poll_forever(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            try:
                self._poll()
            except Exception as exc:  # the cache or the queue failed: every waiting future fails
                error = (
                    exc
                    if isinstance(exc, StorageError)
                    else StorageError(f"dispatch of run {self.run_id} failed: {first_line(exc)}")
                )
                with self._lock:
                    waiting = list(self.futures.values())
                    self.futures.clear()
                for future, _group in waiting:
                    future.set_exception(error)
                return

    def _poll(self) -> None:
        with self._lock:
            if not self.futures:
                return
            open_tasks = dict(self.futures)
        run = self.book.run_ref(self.run_id).get()
        finished = int((run.to_dict() or {}).get("finished", 0)) if run.exists else 0
        if finished == self._finished_seen:
            self._notice_if_stalled(len(open_tasks))
            return
        self._last_progress = time.monotonic()
        refs = [self.book.task_ref(self.run_id, task_id) for task_id in open_tasks]
        resolved: list[tuple[str, dict[str, CellOutcome]]] = []
        for start in range(0, len(refs), 300):
            for snap in self.book.documents.client.get_all(refs[start : start + 300]):
                data = (snap.to_dict() if snap.exists else None) or {}
                if data.get("final"):
                    resolved.append((snap.id, outcomes_of(data.get("outcomes"))))
        with self._lock:
            self._finished_seen = finished
            for task_id, outcomes in resolved:
                future, group = self.futures.pop(task_id)
                order = [outcomes[cell.name] for cell in group.cells if cell.name in outcomes]
                future.set_result(order)

    def _notice_if_stalled(self, waiting: int) -> None:
        """A build with no worker running would wait silently forever: say what it waits for."""
        now = time.monotonic()
        if now - max(self._last_progress, self._last_notice) < WAIT_NOTICE_SECONDS:
            return
        self._last_notice = now
        print(
            f"btbuild: waiting for workers: {waiting} task(s) of run {self.run_id} on {self.names.subscription}, "
            f"none finished in the last {now - self._last_progress:.0f} s (is `btbuild worker` running for this workspace?)",
            file=sys.stderr,
            flush=True,
        )

    def _on_dead_letter(self, received: Any) -> None:
        """Finalize a task Pub/Sub's dead-letter policy forwarded (its workers kept dying)."""
        try:
            task_id, group = decode_task(received.data)
        except ValueError:
            received.ack()  # not a btbuild task: nothing to record
            return
        try:
            state = self.book.begin(group.run_id, task_id, f"dispatcher {worker_id()}")
            if state is not None:
                attempts = received.attributes.get("CloudPubSubDeadLetterSourceDeliveryCount")
                self.book.dead_letter(
                    group,
                    task_id,
                    state.settled,
                    f"task {task_id} was delivered {attempts or state.deliveries - 1} times "
                    "and its workers never finished it: dead-lettered",
                    worker=f"dispatcher {worker_id()}",
                )
        except Exception:  # noqa: BLE001 - redelivered to this or the next dispatcher
            received.nack()
            return
        received.ack()

    def close(self) -> None:
        self._stop.set()
        self._dead.cancel()
        self._poller.join(timeout=10)
        try:
            self.book.close_run(self.run_id)
        finally:
            self.subscriber.close()

    def __enter__(self) -> Dispatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def preflight(backend: Any, project: str | None) -> None:
    """Before planning a distributed build: the cache is Firestore, Pub/Sub has credentials
    and the resources exist (one-line errors naming the fix, exit 2)."""
    if not isinstance(backend, RunDocuments):
        raise UsageError(
            '--executor pubsub needs the shared cache: set [storage] backend = "firestore" in BUILD.toml'
        )
    names = Names(project or backend.project, backend.prefix)
    publisher, subscriber = publisher_client(), subscriber_client()
    try:
        check_resources(
            names,
            topics=[names.topic],
            subscriptions=[names.dead_subscription],
            publisher=publisher,
            subscriber=subscriber,
            who="the dispatcher (btbuild build --executor pubsub)",
        )
    finally:
        subscriber.close()


def run_distributed(scheduler: Any) -> Any:
    """Run a :class:`Scheduler`'s build through Pub/Sub workers; returns its BuildReport
    (``scheduler.run(PubSubExecutor())``)."""
    from btbuild.execution.pubsub_executor import PubSubExecutor

    executor = PubSubExecutor()
    executor.check(scheduler.workspace, scheduler.backend, replace(scheduler.request, dry_run=True))
    return scheduler.run(executor)
