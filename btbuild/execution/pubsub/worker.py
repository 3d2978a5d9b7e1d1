"""``btbuild worker``: pull one task at a time and run it on the Firestore cache."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from btbuild.errors import UsageError
from btbuild.execution.pubsub.resources import ACK_DEADLINE_SECONDS, Names, ensure_resources
from btbuild.execution.pubsub.runbook import RunBook
from btbuild.execution.pubsub.wire import decode_task
from btbuild.execution.runner import Environment, run_group, static_hashes
from btbuild.execution.tasks import GroupTask
from btbuild.storage.firestore import FirestoreBackend
from btbuild.storage.records import RUNNING


class _AckExtender:
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
                subscriber.modify_ack_deadline(
                    request={
                        "subscription": subscription,
                        "ack_ids": [ack_id],
                        "ack_deadline_seconds": deadline,
                    }
                )
            except Exception:  # noqa: BLE001 - a missed extension only risks a duplicate delivery
                continue

    def __enter__(self) -> _AckExtender:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@dataclass
class WorkerStats:
    messages: int = 0
    groups_finished: int = 0
    cells_ran: int = 0


def handle_task(
    env: Environment,
    book: RunBook,
    task_id: str,
    group: GroupTask,
    *,
    max_attempts: int,
    owner: str,
    sleep: Callable[[float], None] = time.sleep,
) -> bool | None:
    """Run one delivery of a task. True: finished (ack); False: retry later (nack);
    None: nothing to do (ack)."""
    begun = book.begin(group.run_id, task_id)
    if begun is None:
        return None
    deliveries, settled = begun
    if deliveries > max_attempts:
        book.dead_letter(
            group,
            task_id,
            settled,
            f"task {task_id} was delivered {deliveries} times (max_attempts = {max_attempts}) "
            "and its workers never finished it: dead-lettered",
            worker=owner,
        )
        return True
    remaining = [cell for cell in group.cells if cell.name not in settled]
    while remaining:
        outcomes = run_group(env, replace(group, cells=tuple(remaining)))
        for outcome in outcomes:
            if outcome.status == "skipped" and deliveries > 1:
                # an earlier delivery of this task committed the cell, then its worker died
                # before recording the outcome: for the build, the cell ran
                cell = next(cell for cell in remaining if cell.name == outcome.name)
                outcome = replace(outcome, status="ran", reason=cell.reason)
            if outcome.status != "blocked" or outcome.reason == "deps_moved":
                settled[outcome.name] = outcome  # deps_moved: the dispatcher plans it again
        blocked = [cell for cell in remaining if cell.name not in settled]
        if not blocked:
            break
        # a crashed worker's (or a duplicate delivery's) lease: wait for it to end or expire
        records = env.backend.get_cells([cell.name for cell in blocked], [group.day.isoformat()])
        expiry = max(
            (r.lease_expires for r in records.values() if r.status == RUNNING), default=time.time()
        )
        sleep(min(max(0.2, expiry - time.time() + 0.1), 5.0))
        remaining = blocked
    retry = (
        any(outcome.status == "failed" for outcome in settled.values())
        and deliveries < max_attempts
    )
    if retry:
        settled = {name: outcome for name, outcome in settled.items() if outcome.status != "failed"}
        book.save(group.run_id, task_id, settled, final=False, worker=owner)
        return False
    book.save(group.run_id, task_id, settled, final=True, worker=owner)
    return True


def serve(
    env: Environment,
    backend: FirestoreBackend,
    *,
    project: str | None = None,
    max_messages: int | None = None,
    idle_exit: float | None = None,
    ack_deadline: int = ACK_DEADLINE_SECONDS,
    log: Callable[[str], None] = lambda line: None,
) -> WorkerStats:
    """Pull and run tasks until stopped (``max_messages`` / ``idle_exit`` seconds without work)."""
    from google.api_core import exceptions as api
    from google.cloud import pubsub_v1  # type: ignore[attr-defined]  # namespace package: no stubs

    names = Names(project or backend.project, backend.prefix)
    max_attempts = env.workspace.execution.max_attempts
    ensure_resources(names, max_attempts, ack_deadline)
    subscriber = pubsub_v1.SubscriberClient()
    book = RunBook(backend)
    owner = env.owner
    stats = WorkerStats()
    idle_since = time.monotonic()
    log(f"worker {owner} pulling {names.subscription}")
    try:
        while max_messages is None or stats.messages < max_messages:
            try:
                response = subscriber.pull(
                    request={"subscription": names.subscription, "max_messages": 1}, timeout=10
                )
            except (api.DeadlineExceeded, api.RetryError, api.ServiceUnavailable):
                response = None
            received = list(response.received_messages) if response is not None else []
            if not received:
                if idle_exit is not None and time.monotonic() - idle_since > idle_exit:
                    break
                time.sleep(0.1)
                continue
            stats.messages += 1
            for message in received:
                verdict = _handle_message(
                    env, book, subscriber, names, message, max_attempts, owner, ack_deadline, log
                )
                if verdict is False:
                    subscriber.modify_ack_deadline(
                        request={
                            "subscription": names.subscription,
                            "ack_ids": [message.ack_id],
                            "ack_deadline_seconds": 0,
                        }
                    )
                else:
                    subscriber.acknowledge(
                        request={"subscription": names.subscription, "ack_ids": [message.ack_id]}
                    )
                    if verdict:
                        stats.groups_finished += 1
            idle_since = time.monotonic()
    finally:
        subscriber.close()
    return stats


def _handle_message(
    env: Environment,
    book: RunBook,
    subscriber: Any,
    names: Names,
    message: Any,
    max_attempts: int,
    owner: str,
    ack_deadline: int,
    log: Callable[[str], None],
) -> bool | None:
    try:
        task_id, group = decode_task(message.message.data)
    except ValueError as exc:
        log(f"dropping message {message.message.message_id}: {exc}")
        return None
    log(
        f"{time.strftime('%H:%M:%S')} task {task_id} of run {group.run_id} ({len(group.cells)} cells, delivery {message.delivery_attempt or '?'})"
    )
    with _AckExtender(subscriber, names.subscription, message.ack_id, ack_deadline):
        verdict = handle_task(env, book, task_id, group, max_attempts=max_attempts, owner=owner)
    log(
        f"{time.strftime('%H:%M:%S')} task {task_id}: {'done' if verdict else 'retry' if verdict is False else 'nothing to do'}"
    )
    return verdict


def worker_environment(session: Any) -> tuple[Environment, FirestoreBackend]:
    backend = session.backend
    if not isinstance(backend, FirestoreBackend):
        raise UsageError(
            f'{session.root / "BUILD.toml"}: btbuild worker needs [storage] backend = "firestore"'
        )
    return Environment(session.workspace, session.plugins, backend, static_hashes(session)), backend
