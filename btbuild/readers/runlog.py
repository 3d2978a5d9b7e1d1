"""``btbuild log``: the run log, one line per attempt of a cell.

Every attempt of every cell leaves one :class:`~btbuild.storage.records.RunRecord`: when it
ran, on which builder or worker, why (the plan's reason and the inputs that moved), how long
each phase took, how many users and shards it wrote and how it ended.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from btbuild.storage.base import Backend
from btbuild.storage.records import RunRecord


@dataclass(frozen=True)
class LogQuery:
    targets: tuple[str, ...] | None = None  # target names; None = every target
    date: str | None = None  # ISO date of the cells
    since: str | None = None  # cells dated on or after this ISO date
    run_id: str | None = None  # one build
    last: int = 20


def read_log(backend: Backend, query: LogQuery) -> list[RunRecord]:
    """The newest ``query.last`` attempts matching the query, newest first."""
    filters: dict[str, Any] = {
        "date": query.date,
        "since": query.since,
        "run_id": query.run_id,
        "limit": query.last,
    }
    if query.targets is None:
        return backend.find_runs(**filters)
    streams = [backend.find_runs(target=name, **filters) for name in query.targets]
    merged = heapq.merge(*streams, key=lambda run: -run.started)
    return list(merged)[: query.last]


def build_id(run: RunRecord) -> str:
    """The build (or worker task) a run-log record belongs to."""
    return run.run_id.split("/", 1)[0]


def to_json(run: RunRecord, labels: Mapping[str, str]) -> dict[str, Any]:
    return {
        "label": labels.get(run.target, run.target),
        "date": run.date,
        "run_id": build_id(run),
        "attempt": run.run_id.split("/", 1)[1] if "/" in run.run_id else None,
        "status": run.status,
        "worker": run.worker_id,
        "trigger": run.trigger,
        "changed": list(run.changed),
        "started": _iso(run.started),
        "duration": round(run.duration, 6),
        "phases": dict(run.phases),
        "users": run.items,
        "shards": run.shards,
        "pass": run.build_pass,
        "error": run.error,
    }


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="seconds")


def render(runs: Iterable[RunRecord], labels: Mapping[str, str]) -> str:
    """A table, newest first; phases and errors on an indented line below their run."""
    rows = list(runs)
    if not rows:
        return "no runs match"
    cells = [f"{labels.get(run.target, run.target)} {run.date}" for run in rows]
    width = max(len(cell) for cell in cells)
    lines = [
        f"{'started (UTC)':<19}  {'cell':<{width}}  {'run':<12}  {'status':<11}  "
        f"{'trigger':<15}  {'users':>7}  {'shards':>6}  {'seconds':>8}  worker"
    ]
    for run, cell in zip(rows, cells, strict=True):
        trigger = run.trigger + (f" ({', '.join(run.changed)})" if run.changed else "")
        lines.append(
            f"{_iso(run.started)[:19].replace('T', ' '):<19}  {cell:<{width}}  "
            f"{build_id(run)[:12]:<12}  {run.status:<11}  {trigger:<15}  {run.items:>7}  "
            f"{run.shards:>6}  {run.duration:>8.3f}  {run.worker_id}"
        )
        if run.phases:
            phases = ", ".join(f"{name} {seconds:.3f}" for name, seconds in run.phases.items())
            lines.append(f"{'':<19}  phases: {phases}")
        if run.error:
            lines.append(f"{'':<19}  error: {run.error}")
    return "\n".join(lines)
