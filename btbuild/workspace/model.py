"""Frozen values describing a loaded workspace: settings and targets.

These are the output of the workspace stage and the input of every later stage; nothing
here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Any

from btbuild.vocabulary import Kind as Kind  # (re-exported: Target.kind's type)


@dataclass(frozen=True)
class Schedule:
    """When a target is due. ``weekdays`` uses Monday=0 as :meth:`datetime.date.weekday`."""

    weekdays: tuple[int, ...] | None = None
    monthdays: tuple[int, ...] | None = None

    def is_due(self, day: date) -> bool:
        if self.weekdays is not None and day.weekday() not in self.weekdays:
            return False
        return self.monthdays is None or day.day in self.monthdays

    def describe(self) -> str:
        if self.weekdays is not None:
            return f"weekdays {list(self.weekdays)}"
        if self.monthdays is not None:
            return f"monthdays {list(self.monthdays)}"
        return "daily"


DAILY = Schedule()


@dataclass(frozen=True)
class Segment:
    """A named user population (``[segment.NAME]``): the users whose record in the user-scope
    root ``source`` has ``field`` (a dotted path) equal to one of ``values``, or for whom the
    plugin predicate ``predicate`` (``btbuild_segment_predicates``) returns True."""

    name: str
    source: str
    field: str | None = None
    values: tuple[Any, ...] = ()
    predicate: str | None = None
    version: str = "1"

    def definition(self) -> dict[str, Any]:
        """What the declaration hash of a target of this segment covers."""
        if self.predicate is not None:
            return {"source": self.source, "predicate": self.predicate, "version": self.version}
        return {
            "source": self.source,
            "field": self.field,
            "values": sorted(self.values, key=repr),
            "version": self.version,
        }

    def field_value(self, record: Any) -> Any:
        value = record
        for part in (self.field or "").split("."):
            if not isinstance(value, dict):
                return None
            value = value.get(part)
        return value


@dataclass(frozen=True)
class AlertSettings:
    """``[alerts]``: where ``alert = true`` targets publish changed results: a Pub/Sub
    ``topic`` (production), or a JSON Lines ``file`` inside the workspace (development)."""

    topic: str | None = None
    project: str | None = None
    file: str | None = None  # workspace-relative


@dataclass(frozen=True)
class Target:
    """One ``[calculation.NAME]`` table of a package BUILD.toml, validated and resolved."""

    name: str
    package: str  # "risk" or "risk/credit"; the label is //package:name
    entry_file: Path  # absolute path of the module file
    entry_attr: str  # class or function name inside it
    kind: Kind = "per_user"
    deps: tuple[str, ...] = ()  # resolved labels "//pkg:name", in declaration order
    roots: tuple[str, ...] = ()
    optional_roots: tuple[str, ...] = ()
    historical: bool = False
    schedule: Schedule = DAILY
    lookback: tuple[tuple[str, int], ...] = ()  # (source, days), sorted by source
    product_lines: tuple[str, ...] = ()
    checks: tuple[tuple[str, object], ...] = ()  # validator overrides, sorted by key
    users: str | None = None  # a segment name: process() runs only for its users
    dep_lookback: tuple[tuple[str, int], ...] = ()  # (dep label, days), sorted by label
    schema_json: str | None = None  # the output JSON Schema, canonical JSON text
    schema_file: str | None = None  # workspace-relative file it came from (None: inline)
    ttl_days: int | None = None  # results older than this many days may be collected (gc)
    alert: bool = False  # publish one message per changed result to [alerts] topic
    # per_date only: ctx.dep of a per_user dep reads it shard by shard (a Mapping, not a dict)
    stream_deps: bool = False
    build_file: Path = field(default=Path("BUILD.toml"), compare=False)
    line: int | None = field(default=None, compare=False)

    @cached_property
    def label(self) -> str:
        return f"//{self.package}:{self.name}"

    @property
    def all_roots(self) -> tuple[str, ...]:
        return self.roots + self.optional_roots

    def lookback_days(self, source: str) -> int:
        return dict(self.lookback).get(source, 0)

    def dep_lookback_days(self, dep_label: str) -> int:
        return dict(self.dep_lookback).get(dep_label, 0)


@dataclass(frozen=True)
class StorageSettings:
    """The ``[storage]`` table: ``backend`` names a registered backend, which validates the
    rest (``options``) itself when it is opened (btbuild/storage/registry.py)."""

    backend: str = "sqlite"
    project: str | None = None  # the Google Cloud project (Firestore, Pub/Sub, alerts)
    options: tuple[tuple[str, Any], ...] = ()  # every key but backend, sorted
    lines: tuple[tuple[str, int], ...] = ()  # key -> line in build_file
    build_file: str = "BUILD.toml"


@dataclass(frozen=True)
class ExecutionSettings:
    flush_every: int = 5000
    memory_fraction: float = 0.70
    max_failure_rate: float = 0.10
    min_items: int = 100
    max_attempts: int = 3
    lease_seconds: int = 120  # renewed every third of it while a cell runs (heartbeat)
    retry_backoff: int = 10  # seconds before the first retry of a failed cell; doubles, <= 600
    user_shards: int = (
        1  # >1: per_user cells computed in this many parts in parallel (pool, Pub/Sub)
    )


@dataclass(frozen=True)
class SimSettings:
    """``[sim]``: the replay sample of the cosmetic-change check (docs/sim.md)."""

    replay_dates: int = 6  # stored cells (dates) replayed per changed target
    replay_users: int = 200  # users replayed per per_user cell (all of them when fewer)
    seed: int = 0  # of the random part of the sample


@dataclass(frozen=True)
class Workspace:
    """A loaded workspace: settings plus every target, keyed by name (names are global)."""

    root: Path
    name: str
    packages_dir: Path
    epoch: int
    plugins: tuple[str, ...]
    start_date: date
    storage: StorageSettings
    execution: ExecutionSettings
    targets: dict[str, Target]  # name -> target, sorted by label
    plugin_settings: dict[str, dict[str, Any]] = field(default_factory=dict)  # [plugin.NAME] tables
    sim: SimSettings = field(default_factory=SimSettings)
    segments: dict[str, Segment] = field(default_factory=dict)  # [segment.NAME] tables
    ttl_days: int | None = None  # [workspace] ttl_days: default retention of every target
    alerts: AlertSettings | None = None  # [alerts]

    def ttl_of(self, target: Target) -> int | None:
        """Days a result of ``target`` is kept (None: forever)."""
        return target.ttl_days if target.ttl_days is not None else self.ttl_days

    @property
    def build_file(self) -> Path:
        return self.root / "BUILD.toml"

    def by_label(self) -> Mapping[str, Target]:
        """label -> target, built once: a loaded workspace's targets do not change."""
        return self._by_label

    @cached_property
    def _by_label(self) -> Mapping[str, Target]:
        return {t.label: t for t in self.targets.values()}  # (a dict: workspaces are pickled)
