"""The wire format: one JSON message per task (never a pickle: nothing read from a queue is
unpickled), and the JSON form of the outcomes workers store in the task documents."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from typing import Any

from btbuild.execution.tasks import CellOutcome, CellTask, GroupTask

MESSAGE_VERSION = 1


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


def encode_task(group: GroupTask, task_id: str | None = None) -> bytes:
    """The Pub/Sub message body of a group (canonical JSON); ``task_id`` defaults to the
    group's label (a child task of a split group has its own)."""
    body = {
        "version": MESSAGE_VERSION,
        "run_id": group.run_id,
        "task_id": task_id or task_id_of(group),
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
