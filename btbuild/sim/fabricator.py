"""Fabricated worlds: deterministic root data for the simulation runner.

A *world* is one fabricated day: a date, a few users, and every root source's data for that
day and the days before it (look-back). All targets simulated together see the same worlds,
so a dependency's fabricated output is computed from exactly the roots its dependents see.

Determinism: every value is drawn from the source's Hypothesis ``strategy()`` through a
private ``ConjectureData`` driven by ``random.Random(seed)``, where the seed is an xxhash of
``(fabricator seed, world index, source, days ago, user)``. Nothing depends on
``PYTHONHASHSEED``, the clock, the process or a Hypothesis database. Hypothesis' default
provider also draws "local constants" harvested from whatever modules happen to be imported
(it would make the worlds depend on the calculation code being tested), so draws go through
:class:`_FabricatorProvider`, which only uses Hypothesis' fixed global constants. The
Hypothesis version is part of :func:`fabricator_version` because draws may change with it.

The first worlds are explicit edge cases (empty and single-position records, zero and
negative numbers, zero prices, missing optional roots, no history, no users); the rest are
random draws, some with missing look-back days.
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import xxhash

FABRICATOR_VERSION = "1"  # bump whenever the worlds change: it is part of every SimHash key
WORLDS = 64  # worlds per simulation (per_user targets get one context per world user)
DEFAULT_SEED = 20240101
FIRST_DAY = date(2023, 1, 2)  # fabricated dates lie in the two years from here
YESTERDAY = 1_000_000  # world index offset of a world's "yesterday" world
INDEPENDENT_HISTORY = 2  # look-back days drawn independently; deeper ones are random walks

EDGE_ROUNDS = 2  # each edge case is tried on this many worlds (different draws)
# edge-case worlds, in order: world i < EDGE_ROUNDS * len(EDGES) is EDGES[i % len(EDGES)]
EDGES = (
    "empty",  # every list in user records is empty (empty portfolio, no trades)
    "single",  # every list in user records keeps only its first element
    "zero",  # every number is 0 (zero prices, zero cash, zero quantities)
    "zero_prices",  # date-level numbers are 0, user records as drawn: NaN-prone divisions
    "zero_users",  # user-level numbers are 0
    "negative",  # every number is negated (negative prices, P&L, quantities)
    "negative_users",  # user-level numbers are negated
    "no_optional",  # optional roots are missing (None) on the day
    "no_history",  # every look-back day is missing (users without history)
    "no_users",  # the day has no users at all
    "one_user",  # a single user
    "tiny",  # every number is scaled by 1e-12 (near-zero denominators)
    "huge",  # every number is scaled by 1e9
    "partial",  # date-level objects keep a third of their keys (unpriced, delisted symbols)
)


@functools.cache
def fabricator_version() -> str:
    """The registry version key: the fabricator's own version plus the Hypothesis version.

    Read from the installed distribution when hypothesis is not imported yet (importing it
    costs 0.2 s, and a build that simulates nothing must not pay it). Once it is imported,
    its ``__version__`` is used: reading package metadata mid-simulation imports new modules
    whose constants Hypothesis may harvest, which would change later draws."""
    import sys

    loaded = sys.modules.get("hypothesis")
    if loaded is not None:
        return f"{FABRICATOR_VERSION}+hypothesis-{loaded.__version__}"
    from importlib.metadata import version

    return f"{FABRICATOR_VERSION}+hypothesis-{version('hypothesis')}"


@dataclass(frozen=True)
class World:
    index: int
    day: date
    users: tuple[str, ...]
    edge: str | None = None
    gaps: frozenset[int] = frozenset()  # look-back days without data (days ago)

    def describe(self) -> str:
        return f"world {self.index}" + (f" ({self.edge})" if self.edge else "")


def _seed(*parts: object) -> int:
    return xxhash.xxh64_intdigest("\x1f".join(str(part) for part in parts).encode())


def _provider() -> type:
    from hypothesis.internal.conjecture.choice import choice_constraints_key, choice_permitted
    from hypothesis.internal.conjecture.providers import GLOBAL_CONSTANTS, HypothesisProvider

    pools: dict[Any, tuple[Any, ...]] = {}

    class _FabricatorProvider(HypothesisProvider):
        """Hypothesis' provider without the local-constant pool (see the module docstring)."""

        def _maybe_draw_constant(
            self, choice_type: Any, constraints: Any, *, p: float = 0.05
        ) -> Any:
            rng = self._random
            assert rng is not None  # always set: ConjectureData is given a Random
            if rng.random() > p:
                return None
            key = (choice_type, choice_constraints_key(choice_type, constraints))
            pool = pools.get(key)
            if pool is None:
                pool = pools[key] = tuple(
                    choice
                    for choice in GLOBAL_CONSTANTS.set_for_type(choice_type)
                    if choice_permitted(choice, constraints)
                )
            return rng.choice(pool) if pool else None

    return _FabricatorProvider


_PROVIDER: list[type] = []


def draw(strategy: Any, seed: int) -> Any:
    """One deterministic example of a Hypothesis ``strategy`` for ``seed``."""
    from hypothesis.control import BuildContext
    from hypothesis.internal.conjecture.data import ConjectureData

    if not _PROVIDER:
        _PROVIDER.append(_provider())
    data = ConjectureData(random=random.Random(seed), provider=_PROVIDER[0])
    with BuildContext(data, is_final=True, wrapped_test=draw):
        return data.draw(strategy)


def map_numbers(value: Any, change: Callable[[float], float]) -> Any:
    """``value`` with every number (not bool) replaced by ``change(number)``, ints kept ints."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        changed = change(float(value))
        return int(changed) if math.isfinite(changed) else value
    if isinstance(value, float):
        return change(value)
    if isinstance(value, dict):
        return {key: map_numbers(item, change) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [map_numbers(item, change) for item in value]
    return value


def map_lists(value: Any, change: Callable[[list[Any]], list[Any]]) -> Any:
    if isinstance(value, dict):
        return {key: map_lists(item, change) for key, item in value.items()}
    if isinstance(value, list):
        return change([map_lists(item, change) for item in value])
    return value


def _walk(value: Any, rng: random.Random) -> Any:
    """A day earlier: every float moves by a small random factor (a geometric random walk)."""
    return map_numbers(value, lambda x: x * math.exp(rng.gauss(0.0, 0.02)))


def _partial(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    return {key: value[key] for index, key in enumerate(sorted(value)) if index % 3 == 0}


_DATE_EDGES: dict[str, Callable[[Any], Any]] = {
    "partial": _partial,
    "zero": lambda v: map_numbers(v, lambda x: 0.0),
    "zero_prices": lambda v: map_numbers(v, lambda x: 0.0),
    "negative": lambda v: map_numbers(v, lambda x: -x),
    "tiny": lambda v: map_numbers(v, lambda x: x * 1e-12),
    "huge": lambda v: map_numbers(v, lambda x: x * 1e9),
}
_USER_EDGES: dict[str, Callable[[Any], Any]] = {
    "empty": lambda v: map_lists(v, lambda items: []),
    "single": lambda v: map_lists(v, lambda items: items[:1]),
    "zero": lambda v: map_numbers(v, lambda x: 0.0),
    "zero_users": lambda v: map_numbers(v, lambda x: 0.0),
    "negative": lambda v: map_numbers(v, lambda x: -x),
    "negative_users": lambda v: map_numbers(v, lambda x: -x),
    "tiny": lambda v: map_numbers(v, lambda x: x * 1e-12),
    "huge": lambda v: map_numbers(v, lambda x: x * 1e9),
}


class Fabricator:
    """Worlds and their root data for a set of root sources (name -> RootSource)."""

    def __init__(self, sources: Mapping[str, Any], *, seed: int = DEFAULT_SEED):
        self.sources = dict(sources)
        self.seed = seed
        self._strategies: dict[str, Any] = {}
        self._values: dict[tuple[Any, ...], Any] = {}
        self._worlds: dict[int, World] = {}

    def worlds(self, count: int = WORLDS, *, start: int = 0) -> list[World]:
        return [self.world(index) for index in range(start, start + count)]

    def world(self, index: int) -> World:
        world = self._worlds.get(index)
        if world is None:
            world = self._worlds[index] = self._make_world(index)
        return world

    def _make_world(self, index: int) -> World:
        rng = random.Random(_seed(self.seed, "world", index))
        day = FIRST_DAY + timedelta(days=rng.randrange(730))
        edge = EDGES[index % len(EDGES)] if 0 <= index < EDGE_ROUNDS * len(EDGES) else None
        count = {"no_users": 0, "one_user": 1}.get(edge or "", rng.choice((1, 2, 2, 3)))
        # ids of different lengths, so code ordering or parsing user ids meets "u10" < "u9"
        ids: set[str] = set()
        while len(ids) < count:
            ids.add(f"u{rng.randrange(10 ** rng.randint(1, 5))}")
        users = tuple(sorted(ids))
        gaps: frozenset[int] = frozenset()
        if edge is None and rng.random() < 0.3:  # weekends, holidays, late data
            gaps = frozenset(back for back in range(1, 64) if rng.random() < 0.3)
        return World(index, day, users, edge, gaps)

    def yesterday(self, world: World) -> World:
        """The day before ``world``, with the same users and fresh draws: a historical
        target's ``ctx.previous`` comes from its output there."""
        index = world.index + YESTERDAY
        if index not in self._worlds:
            rng = random.Random(_seed(self.seed, "yesterday", world.index))
            gaps = (
                frozenset(back for back in range(1, 64) if rng.random() < 0.3)
                if rng.random() < 0.3
                else frozenset()
            )
            self._worlds[index] = World(
                index, world.day - timedelta(days=1), world.users, None, gaps
            )
        return self._worlds[index]

    def _strategy(self, source: str) -> Any:
        if source not in self._strategies:
            self._strategies[source] = self.sources[source].strategy()
        return self._strategies[source]

    def _base(self, world: World, source: str, user: str | None, back: int) -> Any:
        """The drawn (or random-walked) value, before edge transforms and gaps."""
        key = (world.index, source, user, back)
        if key in self._values:
            return self._values[key]
        if back <= INDEPENDENT_HISTORY:
            value = draw(self._strategy(source), _seed(self.seed, world.index, source, user, back))
        else:
            previous = self._base(world, source, user, back - 1)
            value = _walk(
                previous, random.Random(_seed(self.seed, "walk", world.index, source, user, back))
            )
        self._values[key] = value
        return value

    def _missing(self, world: World, source: str, back: int, optional: bool) -> bool:
        if back == 0:
            return optional and world.edge == "no_optional"
        return world.edge == "no_history" or back in world.gaps

    def date_root(self, world: World, source: str, back: int = 0, *, optional: bool = False) -> Any:
        """A date-scope source's value ``back`` days before the world's day (None: no data)."""
        if self._missing(world, source, back, optional):
            return None
        value = self._base(world, source, None, back)
        change = _DATE_EDGES.get(world.edge or "")
        return change(value) if change else value

    def user_root(
        self, world: World, source: str, user: str, back: int = 0, *, optional: bool = False
    ) -> Any:
        """A user-scope source's record for ``user`` (None: this user has no record that day)."""
        if self._missing(world, source, back, optional):
            return None
        value = self._base(world, source, user, back)
        change = _USER_EDGES.get(world.edge or "")
        return change(value) if change else value
