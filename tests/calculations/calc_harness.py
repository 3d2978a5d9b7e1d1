"""A small stand-in for btbuild's executor, to unit-test the demo calculations in isolation.

It reads the package BUILD.toml files itself, loads calculation modules by file path, and
hands them a :class:`FakeContext` that *enforces the declaration*: reading a root the target
does not declare, looking further back than its ``lookback``, or asking for an undeclared
dependency fails the test, so BUILD.toml and code cannot drift apart.
"""

from __future__ import annotations

import datetime
import importlib.util
import json
import logging
import math
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the tomli backport (a btbuild dependency there)
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]
CALCULATIONS = REPO / "calculations"
if str(REPO) not in sys.path:  # calculations import `layers` from the workspace root
    sys.path.insert(0, str(REPO))

USER_SOURCES = frozenset({"portfolio", "trades"})
DATE_SOURCES = frozenset({"prices", "benchmarks", "insights"})


class DeclarationError(AssertionError):
    """A calculation used something its BUILD.toml entry does not declare."""


@dataclass(frozen=True)
class Spec:
    name: str
    package: str
    entry_file: Path
    entry_attr: str
    kind: str = "per_user"
    deps: tuple[str, ...] = ()
    roots: tuple[str, ...] = ()
    optional_roots: tuple[str, ...] = ()
    historical: bool = False
    schedule: Any = "daily"
    lookback: Mapping[str, int] = field(default_factory=dict)
    checks: Mapping[str, Any] = field(default_factory=dict)
    users: str | None = None  # a segment of the workspace BUILD.toml
    dep_lookback: Mapping[str, int] = field(default_factory=dict)  # dep name -> days

    @property
    def label(self) -> str:
        return f"//{self.package}:{self.name}"

    @property
    def dep_names(self) -> tuple[str, ...]:
        return tuple(label.rsplit(":", 1)[1] for label in self.deps)

    def is_due(self, day: datetime.date) -> bool:
        if self.schedule == "daily":
            return True
        if "weekdays" in self.schedule:
            return day.weekday() in self.schedule["weekdays"]
        return day.day in self.schedule["monthdays"]


def load_specs() -> dict[str, Spec]:
    """Every ``[calculation.NAME]`` of every package under ``calculations/``, keyed by name."""
    specs: dict[str, Spec] = {}
    for build in sorted(CALCULATIONS.rglob("BUILD.toml")):
        package = build.parent.relative_to(CALCULATIONS).as_posix()
        with build.open("rb") as handle:
            tables = tomllib.load(handle).get("calculation", {})
        for name, table in tables.items():
            module, attr = table["entry"].split(":")
            deps = tuple(
                f"//{package}{d}" if d.startswith(":") else d for d in table.get("deps", ())
            )
            if name in specs:
                raise AssertionError(f"{build}: duplicate target name {name!r}")
            specs[name] = Spec(
                name=name,
                package=package,
                entry_file=build.parent / f"{module}.py",
                entry_attr=attr,
                kind=table.get("kind", "per_user"),
                deps=deps,
                roots=tuple(table.get("roots", ())),
                optional_roots=tuple(table.get("optional_roots", ())),
                historical=table.get("historical", False),
                schedule=table.get("schedule", "daily"),
                lookback=dict(table.get("lookback", {})),
                checks=dict(table.get("checks", {})),
                users=table.get("users"),
                dep_lookback={
                    key.rsplit(":", 1)[-1]: days
                    for key, days in table.get("dep_lookback", {}).items()
                },
            )
    return specs


SPECS = load_specs()


def load_segments() -> dict[str, Callable[[Any], bool]]:
    """Each ``[segment.NAME]`` of the workspace BUILD.toml as ``accepts(record)``: a field
    segment compares the field, a predicate segment calls the demo plugin's predicate."""
    with (REPO / "BUILD.toml").open("rb") as handle:
        tables = tomllib.load(handle).get("segment", {})
    loader = importlib.util.spec_from_file_location(
        "_demo_checks", REPO / "plugins" / "demo_checks.py"
    )
    assert loader is not None and loader.loader is not None
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    predicates = module.btbuild_segment_predicates()
    segments: dict[str, Callable[[Any], bool]] = {}
    for name, table in tables.items():
        if "predicate" in table:
            segments[name] = predicates[table["predicate"]]
        else:
            field_path, values = table["field"].split("."), table["values"]

            def accepts(record: Any, path: list[str] = field_path, ok: list[Any] = values) -> bool:
                for part in path:
                    record = record.get(part) if isinstance(record, dict) else None
                return record in ok

            segments[name] = accepts
    return segments


SEGMENTS = load_segments()
_ENTRIES: dict[str, Any] = {}


def entry_of(spec: Spec) -> Any:
    """The class or function named by the target's ``entry`` (module loaded once, by path)."""
    if spec.name not in _ENTRIES:
        module_name = f"_demo_calc_{spec.package.replace('/', '_')}_{spec.entry_file.stem}"
        loader = importlib.util.spec_from_file_location(module_name, spec.entry_file)
        assert loader is not None and loader.loader is not None, spec.entry_file
        module = importlib.util.module_from_spec(loader)
        loader.loader.exec_module(module)
        _ENTRIES[spec.name] = getattr(module, spec.entry_attr)
    return _ENTRIES[spec.name]


def new_processor(spec: Spec) -> Callable[[Any], Any]:
    """What the engine does once per cell: a fresh instance's ``process``, or the function."""
    entry = entry_of(spec)
    return entry().process if isinstance(entry, type) else entry


def _keyed(data: Mapping[Any, Any] | None) -> dict[tuple[str, int], Any]:
    """Accept ``{"prices": x}`` (today) or ``{("prices", 3): x}`` and normalize to the latter."""
    return {(k, 0) if isinstance(k, str) else (k[0], k[1]): v for k, v in (data or {}).items()}


class FakeUser:
    def __init__(self, spec: Spec, user_id: str, records: Mapping[Any, Any]):
        self._spec = spec
        self.id = user_id
        self._records = _keyed(records)

    def __getitem__(self, source: str) -> Any:
        return self.get(source)

    def get(self, source: str, days_ago: int = 0) -> Any:
        _check_root(self._spec, source, days_ago, USER_SOURCES)
        return self._records.get((source, days_ago))


class FakeContext:
    def __init__(
        self,
        spec: Spec,
        day: datetime.date,
        roots: Mapping[Any, Any] | None = None,
        deps: Mapping[str, Any] | None = None,
        previous: Any = None,
        user: FakeUser | None = None,
        dep_history: Mapping[tuple[str, int], Any] | None = None,
    ):
        self._spec = spec
        self._history = dict(dep_history or {})
        self.date = day
        self._roots = _keyed(roots)
        self._deps = dict(deps or {})
        self._previous = previous
        self.user = user
        self.log = logging.getLogger(f"btbuild.calc.{spec.name}")

    @property
    def previous(self) -> Any:
        if not self._spec.historical:
            raise DeclarationError(f"{self._spec.label} reads ctx.previous but is not historical")
        return self._previous

    def root(self, source: str, days_ago: int = 0) -> Any:
        _check_root(self._spec, source, days_ago, DATE_SOURCES)
        return self._roots.get((source, days_ago))

    def dep(self, name_or_label: str, days_ago: int = 0) -> Any:
        name = name_or_label.rsplit(":", 1)[-1]
        if name not in self._spec.dep_names:
            raise DeclarationError(
                f"{self._spec.label} reads dep {name_or_label!r} it does not declare"
            )
        if days_ago:
            if not 0 < days_ago <= self._spec.dep_lookback.get(name, 0):
                raise DeclarationError(
                    f"{self._spec.label} reads dep {name!r} days_ago={days_ago} beyond its dep_lookback"
                )
            return self._history.get((name, days_ago))
        return self._deps.get(name)


def _check_root(spec: Spec, source: str, days_ago: int, scope: frozenset[str]) -> None:
    if source not in spec.roots and source not in spec.optional_roots:
        raise DeclarationError(f"{spec.label} reads root {source!r} it does not declare")
    if source not in scope:
        raise DeclarationError(f"{spec.label} reads {source!r} through the wrong accessor")
    if not 0 <= days_ago <= spec.lookback.get(source, 0):
        raise DeclarationError(
            f"{spec.label} reads {source!r} days_ago={days_ago} beyond its lookback"
        )


def check_json(value: Any, where: str = "result") -> None:
    """Fail unless ``value`` is strictly a JSON value (no tuples, no NaN/Infinity, str keys)."""
    if value is None or isinstance(value, (bool, str, int)):
        return
    if isinstance(value, float):
        assert math.isfinite(value), f"{where}: non-finite float {value!r}"
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            check_json(item, f"{where}[{index}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            assert isinstance(key, str), f"{where}: non-string key {key!r}"
            check_json(item, f"{where}.{key}")
        return
    raise AssertionError(f"{where}: {type(value).__name__} is not a JSON value: {value!r}")


def run(
    name: str,
    day: datetime.date = datetime.date(2024, 1, 10),
    *,
    roots: Mapping[Any, Any] | None = None,
    users: Mapping[str, Mapping[Any, Any]] | None = None,
    deps: Mapping[str, Any] | None = None,
    previous: Any = None,
    dep_history: Mapping[tuple[str, int], Any] | None = None,
) -> Any:
    """Run one cell of target ``name`` the way the engine would, and check its result is JSON.

    per_date: returns the value. per_user: ``users`` maps user id -> that user's records;
    ``deps`` holds whole upstream results (per_user upstreams as user -> value mappings, sliced
    per user here); ``previous`` is the previous day's whole result. Returns user -> value,
    leaving out users whose value is None.
    """
    spec = SPECS[name]
    process = new_processor(spec)
    deps = dict(deps or {})
    history = dict(dep_history or {})
    if spec.kind == "per_date":
        result = process(FakeContext(spec, day, roots, deps, previous, dep_history=history))
        check_json(result, spec.label)
        json.dumps(result, allow_nan=False)
        return result
    per_user_deps = {d for d in spec.dep_names if SPECS[d].kind == "per_user"}
    results = {}
    accepts = SEGMENTS[spec.users] if spec.users else None
    for user_id, records in (users or {}).items():
        if accepts is not None and not accepts(_keyed(records).get((_source(spec), 0))):
            continue  # not in the target's segment: the engine never calls process
        user_history = {
            key: (v.get(user_id) if key[0] in per_user_deps and v is not None else v)
            for key, v in history.items()
        }
        user_deps = {
            k: (v.get(user_id) if k in per_user_deps and v is not None else v)
            for k, v in deps.items()
        }
        before = (previous or {}).get(user_id)
        value = process(
            FakeContext(
                spec,
                day,
                roots,
                user_deps,
                before,
                FakeUser(spec, user_id, records),
                dep_history=user_history,
            )
        )
        check_json(value, f"{spec.label}[{user_id}]")
        if value is not None:
            results[user_id] = value
    json.dumps(results, allow_nan=False)
    return results


def _source(spec: Spec) -> str:
    """The source of the target's segment (from the workspace BUILD.toml)."""
    with (REPO / "BUILD.toml").open("rb") as handle:
        return str(tomllib.load(handle)["segment"][spec.users]["source"])


def topological_order() -> list[str]:
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(name: str) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            raise AssertionError(f"dependency cycle through {name}")
        state[name] = 1
        for dep in SPECS[name].dep_names:
            visit(dep)
        state[name] = 2
        order.append(name)

    for name in sorted(SPECS):
        visit(name)
    return order


def build_demo(market: Any, days: list[datetime.date]) -> dict[datetime.date, dict[str, Any]]:
    """Run every target over ``days`` in order like a catch-up build, on a synthetic ``market``.

    Returns date -> target name -> result for the cells that ran (not-due, impossible and
    upstream-impossible cells are absent). ``ctx.previous`` of a historical target is its most
    recent earlier result (or None).
    """
    order = topological_order()
    built: dict[datetime.date, dict[str, Any]] = {}
    latest: dict[str, Any] = {}
    for day in days:
        cells: dict[str, Any] = {}
        for name in order:
            spec = SPECS[name]
            if not spec.is_due(day):
                continue
            if any(not market.available(source, day) for source in spec.roots):
                continue  # impossible / no_data
            if any(dep not in cells for dep in spec.dep_names):
                continue  # impossible / upstream (or not scheduled)
            roots = {}
            for source in spec.roots + spec.optional_roots:
                if source in DATE_SOURCES:
                    for ago in range(spec.lookback.get(source, 0) + 1):
                        record = market.date_record(source, day - datetime.timedelta(days=ago))
                        if record is not None:
                            roots[(source, ago)] = record
            users = None
            if spec.kind == "per_user":
                users = {}
                for user_id in market.user_ids:
                    records = {}
                    for source in (
                        s for s in spec.roots + spec.optional_roots if s in USER_SOURCES
                    ):
                        for ago in range(spec.lookback.get(source, 0) + 1):
                            record = market.user_record(
                                source, user_id, day - datetime.timedelta(days=ago)
                            )
                            if record is not None:
                                records[(source, ago)] = record
                    users[user_id] = records
            deps = {dep: cells[dep] for dep in spec.dep_names}
            history = {
                (dep, back): built.get(day - datetime.timedelta(days=back), {}).get(dep)
                for dep, days in spec.dep_lookback.items()
                for back in range(1, days + 1)
            }
            cells[name] = run(
                name,
                day,
                roots=roots,
                users=users,
                deps=deps,
                previous=latest.get(name),
                dep_history=history,
            )
            if spec.historical:
                latest[name] = cells[name]
        built[day] = cells
    return built


def quote(close: float, sector: str = "tech") -> dict[str, object]:
    """One symbol's `prices` record with every field at ``close``."""
    return {
        "close": close,
        "open": close,
        "high": close,
        "low": close,
        "volume": 1,
        "sector": sector,
    }


def trade(
    side: str, quantity: float, price: float, pnl: float | None = None, days: int | None = None
) -> dict[str, object]:
    """One `trades` record of symbol A."""
    return {
        "symbol": "A",
        "side": side,
        "quantity": quantity,
        "price": price,
        "realized_pnl": pnl,
        "holding_days": days,
    }
