"""``btbuild show``: read one cell's stored result, streamed, with where it came from.

A per_user cell is never held in memory whole: its users are streamed shard by shard in the
order they were written (ascending user id), and ``--user`` stops at the user asked for. The
result hash is checked as the stream ends (a damaged result fails loudly, after the users
already printed).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

from btbuild.errors import LabelError, ResultMissing, UsageError
from btbuild.readers.jsonpath import MISSING, Step, format_path, select
from btbuild.storage.base import Backend
from btbuild.storage.records import CellRecord, RunRecord
from btbuild.vocabulary import RecordStatus

Write = Callable[[str], None]


@dataclass(frozen=True)
class CellOrigin:
    """What a reader wants to know about a stored result besides its value."""

    label: str
    name: str
    date: str
    kind: str
    result_hash: str
    items: int
    shards: int
    status: str  # of the cell's record: "committed", or the latest attempt's state
    computed_at: float | None  # epoch seconds the computing attempt ended
    run_id: str | None
    worker: str | None
    trigger: str | None
    last_error: str | None

    def header(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "date": self.date,
            "kind": self.kind,
            "result_hash": self.result_hash,
            "users" if self.kind == "per_user" else "items": self.items,
            "shards": self.shards,
            "record_status": self.status,
            "computed_at": _iso_time(self.computed_at),
            "run_id": self.run_id,
            "worker": self.worker,
            "trigger": self.trigger,
            "last_error": self.last_error,
        }

    def text_header(self) -> list[str]:
        what = f"{self.items} users" if self.kind == "per_user" else "one value"
        lines = [
            f"{self.label} {self.date}",
            f"  result   {self.kind}, {what}, {self.shards} shard(s), hash {self.result_hash}",
        ]
        if self.run_id is not None:
            lines.append(
                f"  computed {_iso_time(self.computed_at)} by run {self.run_id} "
                f"on {self.worker or '?'} (reason {self.trigger or '?'})"
            )
        else:
            lines.append("  computed (no run-log entry for this result)")
        if self.status != RecordStatus.COMMITTED:
            lines.append(
                f"  note     the latest attempt is {self.status}"
                + (f": {self.last_error}" if self.last_error else "")
                + "; this is the last committed result"
            )
        return lines


def _iso_time(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="seconds")


def why_missing(label: str, day: str, record: CellRecord | None) -> str:
    """One line saying why a cell has no result to show."""
    if record is None:
        return f"{label} on {day} has no result: it was never built (btbuild build {label} --date {day})"
    error = f": {record.last_error}" if record.last_error else ""
    if record.status == RecordStatus.IMPOSSIBLE:
        return f"{label} on {day} has no result: it is impossible{error}"
    if record.status in (RecordStatus.FAILED, RecordStatus.DEAD_LETTER):
        state = "dead-lettered" if record.status == RecordStatus.DEAD_LETTER else "failed"
        return (
            f"{label} on {day} has no result: it {state} after {record.attempts} attempt(s){error}"
        )
    if record.status == RecordStatus.RUNNING:
        return f"{label} on {day} has no result yet: it is being built by {record.lease_owner}"
    if record.status == RecordStatus.EXPIRED:
        return (
            f"{label} on {day} has no result: it expired and was collected (btbuild gc); "
            "a build that needs it recomputes it"
        )
    return f"{label} on {day} has no result"


def locate(backend: Backend, label: str, name: str, day: date) -> tuple[CellRecord, CellOrigin]:
    """The record of a cell that has a result and where that result came from; otherwise
    :class:`ResultMissing` saying why there is none."""
    iso = day.isoformat()
    record = backend.get_cell(name, iso)
    if record is None or not record.has_result:
        raise ResultMissing(why_missing(label, iso, record))
    run = _computing_run(backend, record)
    origin = CellOrigin(
        label=label,
        name=name,
        date=iso,
        kind=record.kind or "per_user",
        result_hash=record.result_hash or "",
        items=record.item_count,
        shards=record.shard_count,
        status=record.status,
        computed_at=(run.started + run.duration) if run else None,
        run_id=run.run_id.split("/", 1)[0] if run else None,
        worker=run.worker_id if run else None,
        trigger=run.trigger if run else None,
        last_error=record.last_error,
    )
    return record, origin


def _computing_run(backend: Backend, record: CellRecord) -> RunRecord | None:
    """The run-log entry of the attempt that wrote the committed result (its run id ends in
    the result's generation)."""
    suffix = f"/{record.generation}"
    for run in backend.find_runs(target=record.target, date=record.date, limit=200):
        if run.run_id.endswith(suffix) and run.status == RecordStatus.COMMITTED:
            return run
    return None


def one_label(matched: set[str], label: str) -> str:
    if len(matched) != 1:
        raise LabelError(f"show takes one target, {label} matches {len(matched)}")
    return next(iter(matched))


def user_values(
    backend: Backend, record: CellRecord, origin: CellOrigin, user: str | None
) -> Iterator[tuple[str, Any]]:
    """(user id, value) of a per_user result, streamed; only ``user`` when given."""
    if user is None:
        yield from backend.iter_result(record.target, record.date)
        return
    for user_id, value in backend.iter_result(record.target, record.date):
        if user_id == user:
            yield user_id, value
            return
        if user_id > user:  # users are stored in ascending order: it is not there
            break
    raise ResultMissing(
        f"{origin.label} on {origin.date} has no value for user {user!r} ({origin.items} users)"
    )


def show(
    backend: Backend,
    label: str,
    name: str,
    day: date,
    write: Write,
    *,
    user: str | None = None,
    path: tuple[Step, ...] = (),
    output: str = "text",
) -> None:
    """Write the stored result of (label, day): a header, then the value(s)."""
    record, origin = locate(backend, label, name, day)
    if user is not None and origin.kind != "per_user":
        raise UsageError(f"--user: {label} is per_date, its result has no users")
    if output == "json":
        _show_json(backend, record, origin, write, user, path)
    else:
        _show_text(backend, record, origin, write, user, path)


def _per_date_value(backend: Backend, record: CellRecord, origin: CellOrigin) -> Any:
    if not backend.has_result(record.target, record.date):
        raise ResultMissing(
            f"{origin.label} on {origin.date}: its stored result is damaged (shards missing)"
        )
    value = backend.read_result(record.target, record.date)
    if value is None and record.result_hash != _null_hash():
        raise ResultMissing(
            f"{origin.label} on {origin.date}: its stored result is damaged "
            "(its shards do not match its hash)"
        )
    return value


def _single_value(
    backend: Backend, record: CellRecord, origin: CellOrigin, user: str | None
) -> Any:
    """The value of a per_date cell, or of one user of a per_user cell."""
    if origin.kind == "per_date":
        return _per_date_value(backend, record, origin)
    return next(iter(user_values(backend, record, origin, user)))[1]


def _null_hash() -> str:
    from btbuild.storage import codec

    return codec.per_date_hash(codec.canonical_bytes(None))


def _show_text(
    backend: Backend,
    record: CellRecord,
    origin: CellOrigin,
    write: Write,
    user: str | None,
    path: tuple[Step, ...],
) -> None:
    header = origin.text_header()
    if path:
        header.append(f"  path     {format_path(path)}")
    if origin.kind == "per_date" or user is not None:  # read it first: a miss prints no header
        value = _single_value(backend, record, origin, user)
        write("\n".join(header) + "\n" + _pretty(select(value, path)) + "\n")
        return
    write("\n".join(header) + "\n")
    for user_id, value in user_values(backend, record, origin, None):
        picked = select(value, path)
        if picked is not MISSING:
            write(f"{user_id}\t{_compact(picked)}\n")


def _show_json(
    backend: Backend,
    record: CellRecord,
    origin: CellOrigin,
    write: Write,
    user: str | None,
    path: tuple[Step, ...],
) -> None:
    head = origin.header()
    head["path"] = format_path(path) if path else None
    head["user"] = user
    opening = json.dumps(head)[:-1]  # the object stays open for the streamed value
    if origin.kind == "per_date" or user is not None:
        picked = select(_single_value(backend, record, origin, user), path)
        write(f'{opening}, "found": {json.dumps(picked is not MISSING)}, ')
        write(f'"value": {_compact(None if picked is MISSING else picked)}}}\n')
        return
    write(f'{opening}, "value": {{')
    first = True
    for user_id, value in user_values(backend, record, origin, None):
        picked = select(value, path)
        if picked is MISSING:
            continue
        write(("\n" if first else ",\n") + f"{json.dumps(user_id)}: {_compact(picked)}")
        first = False
    write("\n}}\n")


def _compact(value: Any) -> str:
    if value is MISSING:
        return "(path not found)"
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def _pretty(value: Any) -> str:
    if value is MISSING:
        return "(path not found)"
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True)
