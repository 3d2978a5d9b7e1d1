"""Frozen records kept by a storage backend, and the pure state changes of a cell.

Every record round-trips through :meth:`to_dict` / :meth:`from_dict` as a plain JSON-safe dict
(what SQLite stores in its JSON columns and Firestore stores as a document). ``from_dict``
raises ``ValueError`` on anything malformed; backends turn that into a cache miss.

A :class:`CellRecord` holds two things at once, on purpose:

* the **last committed result** (``generation``, ``result_hash``, ``shard_count``,
  ``item_count`` and the hashes it was computed from), which stays readable while a new
  attempt runs or after it fails;
* the **state of the latest attempt** (``status``, ``attempts``, ``lease_*``, ``last_error``).

The transition functions at the end (``leased``, ``committed``, ...) are shared by every
backend, which only has to apply them atomically (a transaction in SQLite or Firestore).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from btbuild.vocabulary import RecordStatus

# record statuses (btbuild.vocabulary.RecordStatus), by their old names
COMMITTED = RecordStatus.COMMITTED
RUNNING = RecordStatus.RUNNING
FAILED = RecordStatus.FAILED
DEAD_LETTER = RecordStatus.DEAD_LETTER
IMPOSSIBLE = RecordStatus.IMPOSSIBLE
EXPIRED = RecordStatus.EXPIRED  # shards collected by ``btbuild gc``; result_hash and inputs kept
STATUSES = tuple(RecordStatus)
KINDS = ("per_user", "per_date")

# Fields describing the committed result; only a ResultWriter commit changes them.
RESULT_FIELDS = ("generation", "result_hash", "shard_count", "item_count", "kind", "checksums")
# Fields describing the inputs of the result; a commit or put_cell_status may set them.
INPUT_FIELDS = (
    "composite_hash",
    "components",
    "code_hash",
    "sim_hash",
    "dep_results",
    "root_fingerprints",
    "category",
)


def _str_map(value: Any, name: str) -> dict[str, str]:
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValueError(f"{name} must map strings to strings")
    return dict(value)


def _opt_str(value: Any, name: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{name} must be a string or null")
    return value


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number")
    return float(value)


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer")
    return value


@dataclass(frozen=True)
class CellRecord:
    """The action-cache entry of one (target name, ISO date) cell. Treat the dicts as read-only."""

    target: str
    date: str
    status: str
    composite_hash: str | None = None
    components: dict[str, str] = field(default_factory=dict)
    code_hash: str | None = None
    sim_hash: str | None = None
    result_hash: str | None = None
    dep_results: dict[str, str] = field(default_factory=dict)  # dep label -> result hash used
    root_fingerprints: dict[str, str] = field(default_factory=dict)  # source -> fingerprint
    category: str | None = None  # package of the target when the result was written
    kind: str | None = None  # "per_user" / "per_date" of the committed result
    attempts: int = 0  # attempts since the last commit, counting a commit's own attempt
    lease_owner: str | None = None
    lease_generation: str | None = None  # attempt id of the running attempt
    lease_expires: float = 0.0  # epoch seconds
    started_at: float = 0.0  # epoch seconds the latest attempt started
    last_error: str | None = None
    generation: str | None = None  # attempt id of the committed result's shards
    shard_count: int = 0
    item_count: int = 0
    updated_at: float = 0.0
    # per-shard digests and a seal over the result fields (btbuild.storage.integrity); None
    # on records written before they existed (checked by a full hash check instead)
    checksums: str | None = None
    # input key (composite hash) of the latest attempt that did not commit: failures and dead
    # letters belong to these inputs (a cell whose key changed may run again)
    attempt_key: str | None = None

    @property
    def has_result(self) -> bool:
        return self.generation is not None

    def is_leased(self, now: float) -> bool:
        """True while an attempt is running and its lease has not expired."""
        return self.status == RUNNING and self.lease_owner is not None and self.lease_expires > now

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in ("components", "dep_results", "root_fingerprints"):
            data[name] = dict(data[name])
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CellRecord:
        if not isinstance(data, Mapping):
            raise ValueError("a cell record must be an object")
        unknown = set(data) - _CELL_FIELDS
        if unknown:
            raise ValueError(f"unknown cell record fields {sorted(unknown)}")
        target, date, status = data.get("target"), data.get("date"), data.get("status")
        if not isinstance(target, str) or not isinstance(date, str):
            raise ValueError("target and date must be strings")
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        kind = data.get("kind")
        if kind is not None and kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}")
        return cls(
            target=target,
            date=date,
            status=status,
            composite_hash=_opt_str(data.get("composite_hash"), "composite_hash"),
            components=_str_map(data.get("components", {}), "components"),
            code_hash=_opt_str(data.get("code_hash"), "code_hash"),
            sim_hash=_opt_str(data.get("sim_hash"), "sim_hash"),
            result_hash=_opt_str(data.get("result_hash"), "result_hash"),
            dep_results=_str_map(data.get("dep_results", {}), "dep_results"),
            root_fingerprints=_str_map(data.get("root_fingerprints", {}), "root_fingerprints"),
            category=_opt_str(data.get("category"), "category"),
            kind=kind,
            attempts=_count(data.get("attempts", 0), "attempts"),
            lease_owner=_opt_str(data.get("lease_owner"), "lease_owner"),
            lease_generation=_opt_str(data.get("lease_generation"), "lease_generation"),
            lease_expires=_number(data.get("lease_expires", 0.0), "lease_expires"),
            started_at=_number(data.get("started_at", 0.0), "started_at"),
            last_error=_opt_str(data.get("last_error"), "last_error"),
            generation=_opt_str(data.get("generation"), "generation"),
            shard_count=_count(data.get("shard_count", 0), "shard_count"),
            item_count=_count(data.get("item_count", 0), "item_count"),
            updated_at=_number(data.get("updated_at", 0.0), "updated_at"),
            checksums=_opt_str(data.get("checksums"), "checksums"),
            attempt_key=_opt_str(data.get("attempt_key"), "attempt_key"),
        )


_CELL_FIELDS = {f.name for f in fields(CellRecord)}
CELL_FIELD_ORDER = tuple(f.name for f in fields(CellRecord))
_STATUS_SET = frozenset(STATUSES)
_new = object.__new__


def cell_to_row(record: CellRecord) -> list[Any]:
    """The record as a JSON array in :data:`CELL_FIELD_ORDER` (compact, fast to decode)."""
    return [getattr(record, name) for name in CELL_FIELD_ORDER]


def cell_from_row(values: Any) -> CellRecord:
    """Inverse of :func:`cell_to_row` for hot batched reads: checks shape and the fields the
    planner relies on, without the per-field cost of :meth:`CellRecord.from_dict`.
    ``ValueError`` when the row is malformed."""
    if type(values) is list and len(CELL_FIELD_ORDER) - 2 <= len(values) < len(CELL_FIELD_ORDER):
        # a row written before ``checksums`` / ``attempt_key`` existed
        values = [*values, *[None] * (len(CELL_FIELD_ORDER) - len(values))]
    if type(values) is not list or len(values) != len(CELL_FIELD_ORDER):
        raise ValueError("a cell row must be a list of every field")
    (
        target,
        date,
        status,
        composite,
        components,
        _code,
        _sim,
        result,
        deps,
        roots,
        _category,
        _kind,
        attempts,
        _owner,
        _lease_gen,
        expires,
        started,
        _error,
        generation,
        shards,
        items,
        updated,
        checksums,
        attempt_key,
    ) = values
    if (
        type(target) is not str
        or type(date) is not str
        or status not in _STATUS_SET
        or type(components) is not dict
        or type(deps) is not dict
        or type(roots) is not dict
        or type(attempts) is not int
        or type(shards) is not int
        or type(items) is not int
        or not isinstance(expires, (int, float))
        or not isinstance(started, (int, float))
        or not isinstance(updated, (int, float))
        or (composite is not None and type(composite) is not str)
        or (result is not None and type(result) is not str)
        or (generation is not None and type(generation) is not str)
        or (checksums is not None and type(checksums) is not str)
        or (attempt_key is not None and type(attempt_key) is not str)
    ):
        raise ValueError("a cell row has a field of the wrong type")
    record = _new(CellRecord)
    record.__dict__.update(
        zip(CELL_FIELD_ORDER, values, strict=True)
    )  # frozen: bypass __setattr__ once
    return record


@dataclass(frozen=True)
class Lease:
    """Proof that this process runs one attempt of a cell.

    ``generation`` is the attempt id its shards are written under; ``previous`` is the cell
    as it was just before the lease was taken, so the caller can re-check whether the work is
    still needed (another builder may have committed it meanwhile) and ``release`` if not.
    """

    target: str
    date: str
    owner: str
    generation: str
    expires_at: float
    started_at: float
    lease_seconds: float
    attempts: int
    previous: CellRecord | None = None


@dataclass(frozen=True)
class RunRecord:
    """One attempt of one cell, for the run log."""

    run_id: str
    target: str
    date: str
    status: str  # what the attempt ended as: "committed", "failed", "dead_letter", ...
    build_pass: int = 0  # the graph pass the target ran in
    worker_id: str = ""
    trigger: str = ""  # why it ran: "new", "code_changed", "retry", ...
    started: float = 0.0  # epoch seconds
    duration: float = 0.0  # seconds
    phases: dict[str, float] = field(default_factory=dict)  # phase name -> seconds
    error: str | None = None
    items: int = 0  # users (per_user) or 1 (per_date) in the committed result
    shards: int = 0  # shards the committed result was stored in
    changed: tuple[str, ...] = ()  # the inputs that moved since the record: "code", "deps:..."

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["phases"] = dict(self.phases)
        data["changed"] = list(self.changed)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunRecord:
        if not isinstance(data, Mapping) or set(data) - _RUN_FIELDS:
            raise ValueError("not a run record")
        for name in ("run_id", "target", "date", "status", "worker_id", "trigger"):
            if not isinstance(data.get(name, ""), str):
                raise ValueError(f"{name} must be a string")
        phases = data.get("phases", {})
        if not isinstance(phases, Mapping):
            raise ValueError("phases must be an object")
        changed = data.get("changed", [])
        if not isinstance(changed, list) or not all(isinstance(c, str) for c in changed):
            raise ValueError("changed must be a list of strings")
        return cls(
            run_id=data["run_id"],
            target=data["target"],
            date=data["date"],
            status=data["status"],
            build_pass=_count(data.get("build_pass", 0), "build_pass"),
            worker_id=data.get("worker_id", ""),
            trigger=data.get("trigger", ""),
            started=_number(data.get("started", 0.0), "started"),
            duration=_number(data.get("duration", 0.0), "duration"),
            phases={str(k): _number(v, f"phases.{k}") for k, v in phases.items()},
            error=_opt_str(data.get("error"), "error"),
            items=_count(data.get("items", 0), "items"),
            shards=_count(data.get("shards", 0), "shards"),
            changed=tuple(changed),
        )


_RUN_FIELDS = {f.name for f in fields(RunRecord)}


@dataclass(frozen=True)
class Equivalence:
    """A code change proved cosmetic by its SimHash, recorded when a cell was skipped for it."""

    target: str
    old_code_hash: str
    new_code_hash: str
    sim_hash: str
    date: str
    recorded_at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# --------------------------------------------------------------------------- transitions


def leased(
    previous: CellRecord | None,
    target: str,
    date: str,
    owner: str,
    generation: str,
    lease_seconds: float,
    now: float,
    dead_owners: Collection[str] = (),
) -> tuple[CellRecord, Lease] | None:
    """The cell once ``owner`` takes it, or None while another live lease holds it (a lease of
    one of ``dead_owners``, builders known to be gone, is taken over before it expires)."""
    if previous is not None and previous.is_leased(now) and previous.lease_owner not in dead_owners:
        return None
    base = previous or CellRecord(target=target, date=date, status=RUNNING)
    attempts = 1 if previous is None or previous.status == COMMITTED else previous.attempts + 1
    record = replace(
        base,
        status=RUNNING,
        attempts=attempts,
        lease_owner=owner,
        lease_generation=generation,
        lease_expires=now + lease_seconds,
        started_at=now,
        updated_at=now,
    )
    lease = Lease(
        target=target,
        date=date,
        owner=owner,
        generation=generation,
        expires_at=now + lease_seconds,
        started_at=now,
        lease_seconds=lease_seconds,
        attempts=attempts,
        previous=previous,
    )
    return record, lease


def holds(current: CellRecord | None, lease: Lease) -> bool:
    """True if ``lease`` is still the cell's running attempt (expired or not: nobody took over)."""
    return (
        current is not None
        and current.status == RUNNING
        and current.lease_owner == lease.owner
        and current.lease_generation == lease.generation
    )


def _unleased(record: CellRecord, **changes: Any) -> CellRecord:
    return replace(record, lease_owner=None, lease_generation=None, lease_expires=0.0, **changes)


def committed(
    current: CellRecord, lease: Lease, result: Mapping[str, Any], now: float
) -> CellRecord:
    """The cell once ``lease`` commits ``result`` (RESULT_FIELDS and INPUT_FIELDS values)."""
    return _unleased(
        current, status=COMMITTED, last_error=None, attempt_key=None, updated_at=now, **result
    )


def finished(current: CellRecord, status: str, error: str | None, now: float) -> CellRecord:
    """The cell once its attempt ends without a result (failed, dead_letter, impossible)."""
    return _unleased(current, status=status, last_error=error, updated_at=now)


def released(current: CellRecord, lease: Lease, now: float) -> CellRecord | None:
    """The cell as it was before ``lease`` (None: there was no record, delete it)."""
    previous = lease.previous
    if previous is None:
        return None
    return _unleased(current, status=previous.status, attempts=previous.attempts, updated_at=now)


def renewed(current: CellRecord, lease: Lease, now: float) -> tuple[CellRecord, Lease]:
    expires = now + lease.lease_seconds
    return replace(current, lease_expires=expires, updated_at=now), replace(
        lease, expires_at=expires
    )


def status_put(
    previous: CellRecord | None,
    target: str,
    date: str,
    status: str,
    changes: Mapping[str, Any],
    now: float,
) -> CellRecord:
    """The cell after :meth:`Backend.put_cell_status`; validation happens in the caller."""
    base = previous or CellRecord(target=target, date=date, status=status)
    return _unleased(base, status=status, updated_at=now, **changes)


def moved_deps(
    expected: Mapping[tuple[str, str], str], current: Mapping[tuple[str, str], CellRecord | None]
) -> list[str]:
    """The dep cells (``target on date``) whose committed result is no longer the one a commit
    was computed from: the compare-and-set of :meth:`ResultWriter.commit`'s ``expect_deps``."""
    moved = []
    for (target, date), result_hash in sorted(expected.items()):
        record = current.get((target, date))
        if record is None or not record.has_result or record.result_hash != result_hash:
            moved.append(f"{target} on {date}")
    return moved
