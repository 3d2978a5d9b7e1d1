"""``btbuild worker``: pull one task at a time and run it on the Firestore cache.

One delivery of a task (:func:`handle_task`):

* **nothing to do** (run over, task final): ack;
* **its previous delivery's worker died** (the task document still says ``in_flight``) and
  more than one cell is unsettled: the task is **split** into one child task per cell
  (published, then the parent is acked), so a cell that kills its worker takes down only
  itself; every other cell completes;
* otherwise the cells run (``run_group``); a cell whose lease a dead worker still holds is
  waited for until the lease expires (the heartbeat stopped with it) and taken over;
* **a cell failed** (and has attempts left): the outcomes of the others are stored and the
  message is held back for the back-off (``[execution] retry_backoff`` doubling per attempt,
  <= 600 s) before it is redelivered; the cell's ``last_error`` says when;
* done: the outcomes are stored with the run's counters and the message is acked.

SIGTERM and SIGINT (:class:`GracefulStop`) interrupt the running group: its unfinished cells
are given back (shards dropped, leases released, no attempt counted), the delivery is not
counted, the task is put back on the queue, and the worker exits 0 — all within ``--grace``
seconds, after which it exits at once (143).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from btbuild.errors import UsageError
from btbuild.execution.commits import flush_alerts
from btbuild.execution.pubsub.lifecycle import (
    GRACE_SECONDS,
    AckExtender,
    GracefulStop,
    Stopping,
    set_deadline,
)
from btbuild.execution.pubsub.resources import (
    ACK_DEADLINE_SECONDS,
    Names,
    backoff_seconds,
    check_resources,
    delivery_limit,
    first_line,
    publisher_client,
    subscriber_client,
    subscription_settings,
)
from btbuild.execution.pubsub.runbook import RunBook, TaskState
from btbuild.execution.pubsub.wire import decode_task, encode_task
from btbuild.execution.runner import Environment, run_group
from btbuild.execution.setup import ExecutionContext, ExecutionSource, context_of
from btbuild.execution.tasks import CellOutcome, GroupTask
from btbuild.storage.base import Backend
from btbuild.storage.documents import RunDocuments
from btbuild.storage.records import FAILED, RUNNING
from btbuild.vocabulary import Reason, Status


@dataclass(frozen=True)
class Verdict:
    """What to do with a message once its delivery is handled."""

    ack: bool
    delay: float = 0.0  # not acked: redeliver after this many seconds
    finished: bool = False  # this delivery finished the task


ACK = Verdict(True)


@dataclass
class WorkerStats:
    messages: int = 0
    groups_finished: int = 0
    cells_ran: int = 0
    stopped_by: str | None = None  # "SIGTERM" / "SIGINT" when a signal stopped the worker


@dataclass(frozen=True)
class Limits:
    max_attempts: int  # [execution] max_attempts: failed attempts of one cell
    max_deliveries: int  # the subscription's max_delivery_attempts (or the same formula)
    policy: bool  # the subscription forwards to the dead-letter topic itself
    retry_backoff: float


def handle_task(
    env: Environment,
    book: RunBook,
    task_id: str,
    group: GroupTask,
    *,
    limits: Limits,
    owner: str,
    publish: Callable[[str, GroupTask], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Verdict:
    """Run one delivery of a task; ``publish`` sends a child task (fault isolation)."""
    state = book.begin(group.run_id, task_id, owner)
    if state is None:
        return ACK
    remaining = [cell for cell in group.cells if cell.name not in state.settled]
    if state.republish_children or (state.crashed and len(remaining) > 1 and publish):
        return _split(book, task_id, group, remaining, state, publish)
    if not limits.policy and state.deliveries > limits.max_deliveries:
        book.dead_letter(
            group,
            task_id,
            state.settled,
            f"task {task_id} was delivered {state.deliveries} times (max_delivery_attempts = "
            f"{limits.max_deliveries}) and its workers never finished it: dead-lettered",
            worker=owner,
        )
        return Verdict(True, finished=True)
    settled = _run_cells(env, group, remaining, dict(state.settled), state, sleep)
    failed = [o for o in settled.values() if o.status == FAILED]
    if failed and (limits.policy or state.deliveries < limits.max_deliveries):
        delay = _schedule_retry(env, group, failed, limits)
        kept = {name: o for name, o in settled.items() if o.status != FAILED}
        book.save(group.run_id, task_id, kept, final=False, worker=owner)
        return Verdict(False, delay=delay)
    book.save(group.run_id, task_id, settled, final=True, worker=owner)
    return Verdict(True, finished=True)


def _split(
    book: RunBook,
    task_id: str,
    group: GroupTask,
    remaining: list[Any],
    state: TaskState,
    publish: Callable[[str, GroupTask], None] | None,
) -> Verdict:
    """Fault isolation: the task's worker died, so each unsettled cell becomes its own task."""
    children = {f"{task_id}.{cell.name}": replace(group, cells=(cell,)) for cell in remaining}
    if not state.republish_children and not book.split(
        group.run_id, task_id, list(children), state.settled
    ):
        return ACK
    if publish is None:
        return Verdict(False)
    for child_id, child in children.items():
        publish(child_id, child)
    book.children_published(group.run_id, task_id)
    return ACK


def _run_cells(
    env: Environment,
    group: GroupTask,
    remaining: list[Any],
    settled: dict[str, CellOutcome],
    state: TaskState,
    sleep: Callable[[float], None],
) -> dict[str, CellOutcome]:
    """Run the unsettled cells; wait out (then take over) leases a dead worker left."""
    while remaining:
        for outcome in run_group(env, replace(group, cells=tuple(remaining))):
            if outcome.status == Status.SKIPPED and state.starts > 1:
                # an earlier delivery of this task committed the cell, then its worker died
                # (or gave the task back) before recording the outcome: for the build, it ran
                cell = next(cell for cell in remaining if cell.name == outcome.name)
                outcome = replace(outcome, status=Status.RAN, reason=cell.reason)
            if outcome.status != Status.BLOCKED or outcome.reason == Reason.DEPS_MOVED:
                settled[outcome.name] = outcome  # deps_moved: the dispatcher plans it again
        blocked = [cell for cell in remaining if cell.name not in settled]
        if not blocked:
            break
        records = env.backend.get_cells([cell.name for cell in blocked], [group.day.isoformat()])
        expiry = max(
            (r.lease_expires for r in records.values() if r.status == RUNNING), default=time.time()
        )
        sleep(min(max(0.2, expiry - time.time() + 0.1), 5.0))
        remaining = blocked
    return settled


def _schedule_retry(
    env: Environment, group: GroupTask, failed: list[CellOutcome], limits: Limits
) -> float:
    """The back-off before the failed cells' next attempt (each one's ``last_error`` already
    says which attempt failed and when the next one is due: btbuild/execution/backoff.py)."""
    records = env.backend.get_cells([o.name for o in failed], [group.day.isoformat()])
    attempts = max((r.attempts for r in records.values()), default=1)
    return backoff_seconds(attempts, limits.retry_backoff)


def serve(
    env: Environment,
    backend: RunDocuments,
    *,
    project: str | None = None,
    max_messages: int | None = None,
    idle_exit: float | None = None,
    ack_deadline: int = ACK_DEADLINE_SECONDS,
    grace: float = GRACE_SECONDS,
    log: Callable[[str], None] = lambda line: None,
) -> WorkerStats:
    """Pull and run tasks until stopped (``max_messages`` / ``idle_exit`` seconds without
    work / SIGTERM or SIGINT). Never creates topics or subscriptions: a missing one is a
    :class:`~btbuild.errors.CloudSetupError` naming ``btbuild deploy``."""
    names = Names(project or backend.project, backend.prefix)
    subscriber, publisher = subscriber_client(), publisher_client()
    found = check_resources(
        names,
        topics=[names.topic],
        subscriptions=[names.subscription],
        publisher=publisher,
        subscriber=subscriber,
        who="btbuild worker",
    )
    settings = subscription_settings(found[names.subscription])
    execution = env.workspace.execution
    limits = Limits(
        execution.max_attempts,
        settings.max_delivery_attempts or delivery_limit(execution.max_attempts),
        settings.max_delivery_attempts > 0,
        float(execution.retry_backoff),
    )
    stats = WorkerStats()
    for line in flush_alerts(env.workspace, env.backend, env):  # a killed worker's alerts
        log(f"worker {env.owner}: {line}")
    log(f"worker {env.owner} pulling {names.subscription}")
    try:
        with GracefulStop(grace, log) as stop:
            try:
                _pull_loop(
                    env,
                    names,
                    subscriber,
                    publisher,
                    limits,
                    stats,
                    ack_deadline,
                    log,
                    max_messages=max_messages,
                    idle_exit=idle_exit,
                )
            except Stopping:
                stats.stopped_by = stop.signal_name
    finally:
        subscriber.close()
    return stats


def _pull_loop(
    env: Environment,
    names: Names,
    subscriber: Any,
    publisher: Any,
    limits: Limits,
    stats: WorkerStats,
    ack_deadline: int,
    log: Callable[[str], None],
    *,
    max_messages: int | None,
    idle_exit: float | None,
) -> None:
    from google.api_core import exceptions as api

    book = RunBook(env.backend)
    idle_since = time.monotonic()
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
                return
            time.sleep(0.1)
            continue
        stats.messages += 1
        for message in received:
            with _giving_back(book, subscriber, publisher, names, message, log):
                verdict = _handle_message(
                    env, book, subscriber, publisher, names, message, limits, ack_deadline, log
                )
            if verdict.ack:
                subscriber.acknowledge(
                    request={"subscription": names.subscription, "ack_ids": [message.ack_id]}
                )
                stats.groups_finished += verdict.finished
            else:
                set_deadline(subscriber, names.subscription, message.ack_id, verdict.delay)
        idle_since = time.monotonic()


@contextmanager
def _giving_back(
    book: RunBook,
    subscriber: Any,
    publisher: Any,
    names: Names,
    message: Any,
    log: Callable[[str], None],
) -> Iterator[None]:
    """On :class:`Stopping` mid-task: the runner already gave the cells back; here the
    delivery is uncounted and the task goes back on the queue as a fresh message (its
    Pub/Sub delivery count starts again: a scale-down is not a failed attempt). If that
    publish fails, the message is nacked instead."""
    try:
        yield
    except Stopping:
        try:
            task_id, group = decode_task(message.message.data)
            book.give_back(group.run_id, task_id, {})
            publisher.publish(
                names.topic, message.message.data, run_id=group.run_id, task_id=task_id
            ).result(timeout=10)
            subscriber.acknowledge(
                request={"subscription": names.subscription, "ack_ids": [message.ack_id]}
            )
            log(f"task {task_id} given back")
        except Exception as exc:  # noqa: BLE001 - best effort while stopping
            log(f"giving back {message.message.message_id} failed ({first_line(exc)}): nacking it")
            set_deadline(subscriber, names.subscription, message.ack_id, 0)
        raise


def _handle_message(
    env: Environment,
    book: RunBook,
    subscriber: Any,
    publisher: Any,
    names: Names,
    message: Any,
    limits: Limits,
    ack_deadline: int,
    log: Callable[[str], None],
) -> Verdict:
    try:
        task_id, group = decode_task(message.message.data)
    except ValueError as exc:
        log(f"dropping message {message.message.message_id}: {exc}")
        return ACK
    attempt = int(message.delivery_attempt or 0)
    log(
        f"{time.strftime('%H:%M:%S')} task {task_id} of run {group.run_id} ({len(group.cells)} cells, delivery {attempt or '?'})"
    )

    def publish(child_id: str, child: GroupTask) -> None:
        publisher.publish(
            names.topic, encode_task(child, child_id), run_id=child.run_id, task_id=child_id
        ).result(timeout=60)
        log(f"{time.strftime('%H:%M:%S')} task {task_id}: its worker died; published {child_id}")

    with AckExtender(subscriber, names.subscription, message.ack_id, ack_deadline):
        verdict = handle_task(
            env,
            book,
            task_id,
            group,
            limits=limits,
            owner=env.owner,
            publish=publish,
        )
    what = (
        "done"
        if verdict.finished
        else "acked"
        if verdict.ack
        else f"retry in {verdict.delay:.0f} s"
    )
    log(f"{time.strftime('%H:%M:%S')} task {task_id}: {what}")
    return verdict


def worker_environment(
    source: ExecutionContext | ExecutionSource,
) -> tuple[Environment, RunDocuments]:
    """The environment a ``btbuild worker`` runs groups in, and the run documents it keeps
    (the cache is checked first: a worker needs the shared one)."""
    backend: Backend = source.backend
    if not isinstance(backend, RunDocuments):
        raise UsageError(
            f'{source.workspace.root / "BUILD.toml"}: btbuild worker needs [storage] backend = "firestore"'
        )
    return Environment.of(context_of(source)), backend
