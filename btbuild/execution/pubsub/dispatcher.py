"""The dispatcher: :meth:`Scheduler.dispatch`'s ``submit`` over Pub/Sub."""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import replace
from typing import Any

from btbuild.errors import StorageError, UsageError
from btbuild.execution.pubsub.resources import (
    ACK_DEADLINE_SECONDS,
    Names,
    ensure_resources,
    first_line,
)
from btbuild.execution.pubsub.runbook import RunBook, outcomes_of
from btbuild.execution.pubsub.wire import decode_task, encode_task, task_id_of
from btbuild.execution.runner import worker_id
from btbuild.execution.tasks import CellOutcome, GroupTask
from btbuild.storage.firestore import FirestoreBackend

POLL_SECONDS = 0.25
WAIT_NOTICE_SECONDS = 60.0  # no task finished for this long: say so on stderr (no workers?)


class Dispatcher:
    """``submit(group) -> Future`` for :meth:`Scheduler.dispatch` over Pub/Sub."""

    def __init__(
        self,
        backend: FirestoreBackend,
        run_id: str,
        *,
        max_attempts: int,
        project: str | None = None,
        ack_deadline: int = ACK_DEADLINE_SECONDS,
    ):
        from google.cloud import pubsub_v1  # type: ignore[attr-defined]  # namespace package: no stubs

        self.book = RunBook(backend)
        self.run_id = run_id
        self.names = Names(project or backend.project, backend.prefix)
        ensure_resources(self.names, max_attempts, ack_deadline)
        self.publisher = pubsub_v1.PublisherClient()
        self.subscriber = pubsub_v1.SubscriberClient()
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
                self._drain_dead_letters()
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
            for snap in self.book.backend.client.get_all(refs[start : start + 300]):
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

    def _drain_dead_letters(self) -> None:
        """Finalize tasks Pub/Sub's dead-letter policy forwarded (their workers kept crashing)."""
        from google.api_core import exceptions as api

        try:
            response = self.subscriber.pull(
                request={"subscription": self.names.dead_subscription, "max_messages": 20},
                timeout=2,
            )
        except (api.DeadlineExceeded, api.RetryError):
            return
        acks = []
        for received in response.received_messages:
            acks.append(received.ack_id)
            try:
                task_id, group = decode_task(received.message.data)
            except ValueError:
                continue
            begun = self.book.begin(group.run_id, task_id)
            if begun is not None:
                deliveries, settled = begun
                self.book.dead_letter(
                    group,
                    task_id,
                    settled,
                    f"task {task_id} was delivered {deliveries - 1} times and its workers never finished it: dead-lettered",
                    worker=f"dispatcher {worker_id()}",
                )
        if acks:
            self.subscriber.acknowledge(
                request={"subscription": self.names.dead_subscription, "ack_ids": acks}
            )

    def close(self) -> None:
        self._stop.set()
        self._poller.join(timeout=10)
        try:
            self.book.close_run(self.run_id)
        finally:
            self.subscriber.close()

    def __enter__(self) -> Dispatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_distributed(scheduler: Any) -> Any:
    """Run a :class:`Scheduler`'s build through Pub/Sub workers; returns its BuildReport."""
    backend = scheduler.backend
    if not isinstance(backend, FirestoreBackend):
        raise UsageError(
            '--executor pubsub needs the shared cache: set [storage] backend = "firestore" in BUILD.toml'
        )
    if scheduler.request.dry_run:
        return scheduler.run()

    @contextlib.contextmanager
    def dispatcher() -> Iterator[Callable[[GroupTask], Future[list[CellOutcome]]]]:
        with Dispatcher(
            backend, scheduler.run_id, max_attempts=scheduler.workspace.execution.max_attempts
        ) as open_dispatcher:
            yield open_dispatcher.submit

    return scheduler.run(dispatcher)
