"""Frozen values describing a loaded workspace: settings and targets.

These are the output of the workspace stage and the input of every later stage; nothing
here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

Kind = Literal["per_user", "per_date"]


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


@dataclass(frozen=True)
class StorageSettings:
    backend: Literal["sqlite", "firestore", "memory"] = "sqlite"
    path: str = ".btbuild/cache.db"
    project: str | None = None
    prefix: str | None = None  # firestore collection prefix; defaults to "btbuild/<workspace>"


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

    @property
    def build_file(self) -> Path:
        return self.root / "BUILD.toml"

    def by_label(self) -> dict[str, Target]:
        return {t.label: t for t in self.targets.values()}
