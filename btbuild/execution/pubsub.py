"""Distributed execution: the dispatcher publishes (date, pass) groups to Pub/Sub, workers run them.

The :class:`~btbuild.execution.build.Scheduler` stays in the user's process and decides every
cell; :class:`Dispatcher` is its ``submit``: it publishes one JSON message per runnable group
(never a pickle: nothing read from a queue is unpickled) and returns a future. Completion is
tracked in Firestore next to the cache (``<prefix>/dispatch``):

* the **run document** ``dispatch/{run_id}`` holds ``published`` and ``pending`` task counts;
  workers decrement ``pending`` in the same transaction that finalizes a task, so a task is
  counted exactly once however often Pub/Sub delivers it;
* one **task document** ``dispatch/{run_id}/tasks/{task_id}`` per group holds the delivery
  count, the outcomes of cells already settled by earlier deliveries, and ``final`` once the
  group is done. The dispatcher polls the run document and reads the task documents of its
  open futures with ``get_all`` when the count moved.

:func:`serve` is ``btbuild worker``: synchronous pull of one message at a time, the ack
deadline extended every third of its length while the group runs (the Pub/Sub lease), then
``run_group`` on the Firestore backend. A failed cell is retried by redelivery (nack) until
``[execution] max_attempts`` deliveries; the runner dead-letters it on its last attempt. A
message Pub/Sub delivered more than ``max_attempts`` times (its workers crashed) is finalized
as ``dead_letter`` by the worker that sees it, and a message the subscription's dead-letter
policy forwarded is finalized by the dispatcher, which pulls the dead-letter subscription.
A redelivered group skips the cells an earlier delivery settled and waits out the lease of a
crashed worker (``lease_seconds``) before taking its cells over.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from btbuild.errors import StorageError, UsageError
from btbuild.execution.runner import Environment, run_group, static_hashes, worker_id
from btbuild.execution.tasks import CellOutcome, CellTask, GroupTask
from btbuild.storage.firestore import FirestoreBackend
from btbuild.storage.records import DEAD_LETTER, RUNNING

MESSAGE_VERSION = 1
ACK_DEADLINE_SECONDS = 60  # extended every third of it while a worker runs the group
POLL_SECONDS = 0.25
WAIT_NOTICE_SECONDS = 60.0  # no task finished for this long: say so on stderr (no workers?)
TERMINAL = frozenset({"ran", "skipped", "dead_letter", "impossible"})


# --------------------------------------------------------------------------- JSON messages


def _day(value: Any) -> date:
    if not isinstance(value, str):
        raise ValueError(f"date {value!r} is not an ISO date string")
    return date.fromisoformat(value)


def _str_map(value: Any, name: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValueError(f"{name} must map strings to strings")
    return dict(value)


def cell_to_json(cell: CellTask) -> dict[str, Any]:
    return {
        "name": cell.name,
        "day": cell.day.isoformat(),
        "reason": cell.reason,
        "build_pass": cell.build_pass,
        "key": cell.key,
        "static": cell.static,
        "code_hash": cell.code_hash,
        "components": dict(cell.components),
        "root_fingerprints": dict(cell.root_fingerprints),
        "dep_results": dict(cell.dep_results),
        "dep_dates": {name: day.isoformat() for name, day in cell.dep_dates.items()},
        "previous_date": cell.previous_date.isoformat() if cell.previous_date else None,
        "sim_hash": cell.sim_hash,
    }


def cell_from_json(data: Any) -> CellTask:
    if not isinstance(data, dict):
        raise ValueError("a cell task must be an object")
    for name in ("name", "reason", "key", "static", "code_hash"):
        if not isinstance(data.get(name), str):
            raise ValueError(f"cell task field {name!r} must be a string")
    if not isinstance(data.get("build_pass"), int) or isinstance(data.get("build_pass"), bool):
        raise ValueError("cell task field 'build_pass' must be an integer")
    sim_hash = data.get("sim_hash")
    if sim_hash is not None and not isinstance(sim_hash, str):
        raise ValueError("cell task field 'sim_hash' must be a string or null")
    dep_dates = data.get("dep_dates")
    if not isinstance(dep_dates, dict):
        raise ValueError("cell task field 'dep_dates' must be an object")
    previous = data.get("previous_date")
    return CellTask(
        name=data["name"],
        day=_day(data.get("day")),
        reason=data["reason"],
        build_pass=data["build_pass"],
        key=data["key"],
        static=data["static"],
        code_hash=data["code_hash"],
        components=_str_map(data.get("components"), "components"),
        root_fingerprints=_str_map(data.get("root_fingerprints"), "root_fingerprints"),
        dep_results=_str_map(data.get("dep_results"), "dep_results"),
        dep_dates={str(name): _day(day) for name, day in dep_dates.items()},
        previous_date=_day(previous) if previous is not None else None,
        sim_hash=sim_hash,
    )


def task_id_of(group: GroupTask) -> str:
    return group.label


def encode_task(group: GroupTask) -> bytes:
    """The Pub/Sub message body of a group (canonical JSON)."""
    body = {
        "version": MESSAGE_VERSION,
        "run_id": group.run_id,
        "task_id": task_id_of(group),
        "day": group.day.isoformat(),
        "build_pass": group.build_pass,
        "cells": [cell_to_json(cell) for cell in group.cells],
        "shard": group.shard,
        "shards": group.shards,
        "combine": group.combine,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def decode_task(data: bytes) -> tuple[str, GroupTask]:
    """(task id, group) of a message body; ``ValueError`` for anything malformed."""
    try:
        body = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(body, dict) or body.get("version") != MESSAGE_VERSION:
        raise ValueError(f"not a version {MESSAGE_VERSION} btbuild task")
    run_id, task_id, cells = body.get("run_id"), body.get("task_id"), body.get("cells")
    if not isinstance(run_id, str) or not isinstance(task_id, str) or not isinstance(cells, list):
        raise ValueError("run_id, task_id and cells are required")
    build_pass = body.get("build_pass")
    if not isinstance(build_pass, int):
        raise ValueError("build_pass must be an integer")
    shard, shards, combine = body.get("shard", 0), body.get("shards", 1), body.get("combine", False)
    if not (
        isinstance(shard, int) and isinstance(shards, int) and 0 <= shard < shards
    ) or not isinstance(combine, bool):
        raise ValueError("shard, shards and combine must be 0 <= shard < shards and a boolean")
    group = GroupTask(
        _day(body.get("day")),
        build_pass,
        tuple(cell_from_json(cell) for cell in cells),
        run_id,
        shard=shard,
        shards=shards,
        combine=combine,
    )
    return task_id, group


def outcome_to_json(outcome: CellOutcome) -> dict[str, Any]:
    return {
        "name": outcome.name,
        "day": outcome.day.isoformat(),
        "status": outcome.status,
        "reason": outcome.reason,
        "result_hash": outcome.result_hash,
        "items": outcome.items,
        "failures": outcome.failures,
        "duration": outcome.duration,
        "error": outcome.error,
        "phases": dict(outcome.phases),
    }


def outcome_from_json(data: Mapping[str, Any]) -> CellOutcome:
    return CellOutcome(
        name=str(data["name"]),
        day=_day(data["day"]),
        status=str(data["status"]),
        reason=str(data["reason"]),
        result_hash=data.get("result_hash"),
        items=int(data.get("items", 0)),
        failures=int(data.get("failures", 0)),
        duration=float(data.get("duration", 0.0)),
        error=data.get("error"),
        phases={str(k): float(v) for k, v in dict(data.get("phases", {})).items()},
    )


# --------------------------------------------------------------------------- names and resources


@dataclass(frozen=True)
class Names:
    """Pub/Sub resource names derived from the storage prefix (``btbuild/demo`` ->
    ``btbuild.demo.tasks``, ``btbuild.demo.workers``, ``btbuild.demo.dead``, ...)."""

    project: str
    prefix: str

    @property
    def base(self) -> str:
        base = re.sub(r"[^A-Za-z0-9_.\-]", ".", self.prefix.replace("/", "."))
        return base if base[:1].isalpha() and not base.startswith("goog") else f"btbuild.{base}"

    @property
    def topic(self) -> str:
        return f"projects/{self.project}/topics/{self.base}.tasks"

    @property
    def subscription(self) -> str:
        return f"projects/{self.project}/subscriptions/{self.base}.workers"

    @property
    def dead_topic(self) -> str:
        return f"projects/{self.project}/topics/{self.base}.dead"

    @property
    def dead_subscription(self) -> str:
        return f"projects/{self.project}/subscriptions/{self.base}.dead.dispatch"


def ensure_resources(
    names: Names, max_attempts: int, ack_deadline: int = ACK_DEADLINE_SECONDS
) -> None:
    """Create the topics and subscriptions if missing (production: see docs/deploy.md).

    Pub/Sub accepts 5..100 for ``max_delivery_attempts``; the workers enforce ``max_attempts``
    themselves as well, so a smaller value (or an emulator that ignores the policy) still ends
    a poison task after ``max_attempts`` deliveries."""
    from google.api_core import exceptions as api
    from google.cloud import pubsub_v1  # type: ignore[attr-defined]  # namespace package: no stubs

    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    try:
        for topic in (names.topic, names.dead_topic):
            with contextlib.suppress(api.AlreadyExists):
                publisher.create_topic(request={"name": topic})
        policy = {
            "dead_letter_topic": names.dead_topic,
            "max_delivery_attempts": min(100, max(5, max_attempts)),
        }
        for subscription, topic, extra in (
            (names.subscription, names.topic, {"dead_letter_policy": policy}),
            (names.dead_subscription, names.dead_topic, {}),
        ):
            with contextlib.suppress(api.AlreadyExists):
                subscriber.create_subscription(
                    request={
                        "name": subscription,
                        "topic": topic,
                        "ack_deadline_seconds": ack_deadline,
                        **extra,
                    }
                )
    except api.GoogleAPIError as exc:
        raise StorageError(
            f"pubsub {names.project}: cannot create topics and subscriptions for {names.base}: {_first_line(exc)}"
        ) from None
    finally:
        subscriber.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


# --------------------------------------------------------------------------- task documents


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
            return deliveries, _outcomes(data.get("outcomes"))

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


def _outcomes(encoded: Any) -> dict[str, CellOutcome]:
    try:
        data = json.loads(encoded) if isinstance(encoded, str) else {}
        return {str(name): outcome_from_json(value) for name, value in data.items()}
    except (ValueError, KeyError, TypeError):
        return {}


# --------------------------------------------------------------------------- dispatcher


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
                f"pubsub {self.names.topic}: cannot publish task {task_id}: {_first_line(exc)}"
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
                    else StorageError(f"dispatch of run {self.run_id} failed: {_first_line(exc)}")
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
                    resolved.append((snap.id, _outcomes(data.get("outcomes"))))
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


# --------------------------------------------------------------------------- worker


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
            if outcome.status != "blocked":
                settled[outcome.name] = outcome
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
