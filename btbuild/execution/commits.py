"""After a cell commits: the ``btbuild_cell_committed`` hook and built-in alerts.

Both run in the process that committed the cell (the build, a ``--jobs`` worker or a Pub/Sub
worker), right after :meth:`ResultWriter.commit` returned: the result is durable and readable.
They run once per committed cell: a cell is committed by exactly one attempt (its lease),
the parts of a sharded cell are not cells (only the combine commit counts), and skipped or
cosmetically adopted cells commit nothing.

``alert = true`` targets publish one Pub/Sub message per *changed* result (a first result,
or a hash different from the one it replaced) to the ``[alerts]`` topic; a rebuild that
changes nothing publishes nothing. Delivery is at most once per commit: the message is
published after the commit, and a process killed in between loses it (the next change
publishes again); a publish that fails is reported on the cell and fails the build (exit 1).
"""

from __future__ import annotations

import json
import os
from datetime import date
from typing import Any

from btbuild.errors import BtbuildError
from btbuild.storage.records import EXPIRED, CellRecord
from btbuild.vocabulary import Reason
from btbuild.workspace.model import AlertSettings, Target

PUBLISH_TIMEOUT = 60.0
HOOK_FAILED = Reason.COMMIT_HOOK_FAILED  # the reason of a cell that ran but whose hooks failed
EMULATOR_PROJECT = "btbuild-local"  # the project name used under the emulators


def previous_hash(previous: CellRecord | None) -> str | None:
    """The result hash a commit replaces (an expired result's hash still counts)."""
    if previous is None:
        return None
    return previous.result_hash if previous.has_result or previous.status == EXPIRED else None


def after_commit(
    env: Any, target: Target, day: date, record: CellRecord, before: str | None
) -> str | None:
    """Call the hooks and publish the alert; one line of error, or None."""
    changed = record.result_hash != before
    iso = day.isoformat()
    problems = []

    def read_result() -> Any:
        return env.backend.read_result(target.name, iso)

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
        try:
            value = read_result() if record.kind == "per_date" else None
            publisher(env).publish(target, day, record, before, value)
        except BtbuildError as exc:
            problems.append(str(exc))
    if not problems:
        return None
    return f"{target.label}: committed, but after the commit: {'; '.join(problems)}"


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
        self, target: Target, day: date, record: CellRecord, before: str | None, value: Any
    ) -> bytes:
        data = {
            "workspace": self.workspace,
            "target": target.label,
            "name": target.name,
            "date": day.isoformat(),
            "result_hash": record.result_hash,
            "previous_result_hash": before,
            "kind": record.kind,
            "items": record.item_count,
        }
        if record.kind == "per_date":
            data["result"] = value
        return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()

    def publish(
        self, target: Target, day: date, record: CellRecord, before: str | None, value: Any
    ) -> None:
        from google.api_core import exceptions as api
        from google.cloud import pubsub_v1  # type: ignore[attr-defined]  # no stubs

        data = self.message(target, day, record, before, value)
        try:
            if self._client is None:
                self._client = pubsub_v1.PublisherClient()
            future = self._client.publish(
                self.topic,
                data,
                target=target.label,
                date=day.isoformat(),
                result_hash=record.result_hash or "",
            )
            future.result(timeout=PUBLISH_TIMEOUT)
        except api.NotFound:
            raise BtbuildError(
                f"alert for {target.label} on {day.isoformat()} not published: topic {self.topic} does not exist"
            ) from None
        except Exception as exc:  # noqa: BLE001 - one line naming the topic and the cell
            line = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise BtbuildError(
                f"alert for {target.label} on {day.isoformat()} not published to {self.topic}: {line}"
            ) from None


class AlertFile(AlertPublisher):
    """``[alerts] file``: the same messages as JSON Lines in a workspace file, one line per
    message (``{"data": {...}, "attributes": {...}}``), appended with one write each so
    concurrent processes (``--jobs N``) never interleave lines. For development and demos."""

    def __init__(self, settings: AlertSettings, workspace: str, root: Any):
        self.path = root / (settings.file or "alerts.jsonl")
        self.workspace = workspace

    def publish(
        self, target: Target, day: date, record: CellRecord, before: str | None, value: Any
    ) -> None:
        data = json.loads(self.message(target, day, record, before, value))
        attributes = {"target": target.label, "date": day.isoformat()}
        line = json.dumps({"data": data, "attributes": attributes}, sort_keys=True) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(handle, line.encode())
                os.fsync(handle)
            finally:
                os.close(handle)
        except OSError as exc:
            raise BtbuildError(
                f"alert for {target.label} on {day.isoformat()} not written to {self.path}: {exc.strerror}"
            ) from None
