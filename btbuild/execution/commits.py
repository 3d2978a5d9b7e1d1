"""After a cell commits: the ``btbuild_cell_committed`` hook and built-in alerts.

Both run in the process that committed the cell (the build, a ``--jobs`` worker or a Pub/Sub
worker), right after :meth:`ResultWriter.commit` returned: the result is durable and readable.
They run once per committed cell: a cell is committed by exactly one attempt (its lease),
the parts of a sharded cell are not cells (only the combine commit counts), and skipped or
cosmetically adopted cells commit nothing.

``alert = true`` targets publish one Pub/Sub message per *changed* result (a first result,
or a hash different from the one it replaced) to the ``[alerts]`` topic; a rebuild that
changes nothing publishes nothing. Delivery is at least once: the commit's own transaction
stores the alert in the cache's outbox (btbuild/storage/outbox.py); the committing process
publishes it and then deletes the entry. A process killed in between, or a publish that
fails (reported on the cell: the build exits 1), leaves the entry, and the next build or
``btbuild worker`` publishes it first (:func:`flush_alerts`). A consumer may therefore see
a message twice: it deduplicates on the ``alert_id`` attribute. A backend plugin without an
outbox (``supports_outbox`` false) publishes after the commit, at most once.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from btbuild.errors import BtbuildError, DamagedResult
from btbuild.storage.base import result_before
from btbuild.storage.outbox import PendingAlert
from btbuild.storage.records import CellRecord
from btbuild.vocabulary import Reason
from btbuild.workspace.model import AlertSettings, Target, Workspace

PUBLISH_TIMEOUT = 60.0
HOOK_FAILED = Reason.COMMIT_HOOK_FAILED  # the reason of a cell that ran but whose hooks failed
EMULATOR_PROJECT = "btbuild-local"  # the project name used under the emulators
# tests only: a file path; the process writes its pid there after a commit whose alert is
# pending and sleeps before publishing it (so a test can kill -9 it right there)
HOLD_BEFORE_ALERT = "BTBUILD_TEST_HOLD_BEFORE_ALERT"

previous_hash = result_before  # the result hash a commit replaces


def after_commit(
    env: Any, target: Target, day: date, record: CellRecord, before: str | None
) -> str | None:
    """Call the hooks and publish the alert; one line of error, or None."""
    changed = record.result_hash != before
    iso = day.isoformat()
    problems = []

    def read_result() -> Any:
        # exactly the result committed (another builder's since raises ResultMovedOn: a hook
        # never gets other data under this commit's result hash)
        return env.backend.read_expected(target.name, iso, record.result_hash)

    try:
        env.plugins.call_each(
            "btbuild_cell_committed",
            target=target.name,
            label=target.label,
            date=day,
            result_hash=record.result_hash,
            changed=changed,
            read_result=read_result,
        )
    except BtbuildError as exc:
        problems.append(f"btbuild_cell_committed: {exc}")
    if target.alert and changed:
        alert = PendingAlert(
            target.name,
            iso,
            record.generation or "",
            record.result_hash,
            before,
            record.kind,
            record.item_count,
            record.updated_at,
        )
        _hold_before_alert()
        try:
            deliver(env.backend, publisher(env), target, alert)
        except BtbuildError as exc:
            problems.append(str(exc))
    if not problems:
        return None
    return f"{target.label}: committed, but after the commit: {'; '.join(problems)}"


def deliver(backend: Any, publish: AlertPublisher, target: Target, alert: PendingAlert) -> None:
    """Publish one alert, then delete its outbox entry. The value of a per_date result is
    read from the cache; a cell that no longer holds the alert's result (a later commit
    replaced it) is announced ``superseded``, without its value."""
    value, superseded = None, False
    if alert.kind == "per_date":
        try:
            value = backend.read_expected(alert.target, alert.date, alert.result_hash)
        except DamagedResult:
            superseded = True
    else:  # a per_user result is not sent: its hash says whether it is still the cell's
        current = backend.get_cell(alert.target, alert.date)
        superseded = current is None or current.result_hash != alert.result_hash
    publish.publish(target, alert, value, superseded)
    if backend.supports_outbox:
        backend._delete_alert(alert.key)


def flush_alerts(
    workspace: Workspace,
    backend: Any,
    env: Any = None,
    begun: Callable[[], dict[str, PendingAlert | None]] | None = None,
) -> list[str]:
    """Publish the alerts a crashed or failed process left in the outbox (the next build and
    ``btbuild worker`` call this first); one line per alert handled. An entry of a target
    that no longer has ``alert = true`` (or no longer exists) is dropped unpublished; one
    that fails to publish stays for the next time and is reported. ``begun``: the outbox
    read when the build began (``Backend.start_pending_alerts``); empty then, nothing is
    done (an entry added since is the next flusher's, as one added just after a read now
    would be), else the outbox is read again now."""
    if begun is not None and not begun():
        return []
    pending = backend.pending_alerts() if backend.supports_outbox else {}
    if not pending:
        return []
    targets = {target.name: target for target in workspace.targets.values()}
    holder = env if env is not None else _Holder(workspace)
    done = []
    for key, alert in sorted(pending.items()):
        target = targets.get(alert.target) if alert is not None else None
        if alert is None or target is None or not target.alert:
            backend._delete_alert(key)
            what = "unreadable" if alert is None else f"of {alert.target}, no longer alert = true"
            done.append(f"alert outbox entry {key} dropped ({what})")
            continue
        try:
            deliver(backend, publisher(holder), target, alert)
        except BtbuildError as exc:
            done.append(f"left-over alert for {target.label} on {alert.date} still pending: {exc}")
            continue
        done.append(f"left-over alert for {target.label} on {alert.date} published")
    return done


class _Holder:
    """What :func:`publisher` caches its client on, outside a running build."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace


def _hold_before_alert() -> None:
    hold = os.environ.get(HOLD_BEFORE_ALERT)
    if hold:
        Path(hold).write_text(str(os.getpid()))
        time.sleep(120)


def publisher(env: Any) -> AlertPublisher:  # or its AlertFile subclass
    """The process's alert publisher (one Pub/Sub client per process)."""
    found: AlertPublisher | None = env.__dict__.get("_alerts")
    if found is None:
        workspace = env.workspace
        if workspace.alerts is None:  # the loader refuses alert = true without [alerts]
            raise BtbuildError("alert = true needs an [alerts] table")
        settings = workspace.alerts
        found = env.__dict__["_alerts"] = (
            AlertFile(settings, workspace.name, workspace.root)
            if settings.file is not None
            else AlertPublisher(settings, workspace.name, workspace.storage.project)
        )
    return found


class AlertPublisher:
    """Publishes alert messages to the ``[alerts]`` topic.

    Message data (JSON): ``workspace``, ``target`` (label), ``name``, ``date``,
    ``result_hash``, ``previous_result_hash`` (null for a first result), ``kind``, ``items``
    and, for a per_date result, ``result`` (the value). Attributes: ``target``, ``date``,
    ``result_hash`` (subscribers can filter on them without parsing the data)."""

    def __init__(self, settings: AlertSettings, workspace: str, storage_project: str | None):
        project = (
            settings.project
            or storage_project
            or os.environ.get("GOOGLE_CLOUD_PROJECT")
            or (EMULATOR_PROJECT if os.environ.get("PUBSUB_EMULATOR_HOST") else None)
        )
        if project is None:
            raise BtbuildError(
                "[alerts]: no Google Cloud project: set [alerts] project (or [storage] project)"
            )
        self.topic = f"projects/{project}/topics/{settings.topic}"
        self.workspace = workspace
        self._client: Any = None

    def message(
        self, target: Target, alert: PendingAlert, value: Any, superseded: bool = False
    ) -> bytes:
        data = {
            "workspace": self.workspace,
            "target": target.label,
            "name": target.name,
            "date": alert.date,
            "result_hash": alert.result_hash,
            "previous_result_hash": alert.previous_result_hash,
            "kind": alert.kind,
            "items": alert.item_count,
            "superseded": superseded,
        }
        if alert.kind == "per_date" and not superseded:
            data["result"] = value
        return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()

    def attributes(self, target: Target, alert: PendingAlert) -> dict[str, str]:
        return {
            "target": target.label,
            "date": alert.date,
            "result_hash": alert.result_hash or "",
            "alert_id": alert.alert_id,
        }

    def publish(
        self, target: Target, alert: PendingAlert, value: Any, superseded: bool = False
    ) -> None:
        from google.api_core import exceptions as api
        from google.cloud import pubsub_v1  # type: ignore[attr-defined]  # no stubs

        data = self.message(target, alert, value, superseded)
        try:
            if self._client is None:
                self._client = pubsub_v1.PublisherClient()
            future = self._client.publish(self.topic, data, **self.attributes(target, alert))
            future.result(timeout=PUBLISH_TIMEOUT)
        except api.NotFound:
            raise BtbuildError(
                f"alert for {target.label} on {alert.date} not published: topic {self.topic} does not exist"
            ) from None
        except Exception as exc:  # noqa: BLE001 - one line naming the topic and the cell
            line = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise BtbuildError(
                f"alert for {target.label} on {alert.date} not published to {self.topic}: {line}"
            ) from None


class AlertFile(AlertPublisher):
    """``[alerts] file``: the same messages as JSON Lines in a workspace file, one line per
    message (``{"data": {...}, "attributes": {...}}``), appended with one write each so
    concurrent processes (``--jobs N``) never interleave lines. For development and demos."""

    def __init__(self, settings: AlertSettings, workspace: str, root: Any):
        self.path = root / (settings.file or "alerts.jsonl")
        self.workspace = workspace

    def publish(
        self, target: Target, alert: PendingAlert, value: Any, superseded: bool = False
    ) -> None:
        data = json.loads(self.message(target, alert, value, superseded))
        line = json.dumps(
            {"data": data, "attributes": self.attributes(target, alert)}, sort_keys=True
        )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(handle, (line + "\n").encode())
                os.fsync(handle)
            finally:
                os.close(handle)
        except OSError as exc:
            raise BtbuildError(
                f"alert for {target.label} on {alert.date} not written to {self.path}: {exc.strerror}"
            ) from None
