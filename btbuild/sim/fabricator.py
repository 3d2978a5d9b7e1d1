"""Fabricated worlds: deterministic root data for the simulation runner.

A *world* is one fabricated day: a date, its users, and every root source's data for that
day and the days before it (look-back, and the earlier days of a historical chain). All
targets simulated together see the same worlds, so a dependency's fabricated output is
computed from exactly the roots its dependents see.

Kinds of worlds (the standard ``WORLDS`` = 64, in this order; docs/sim.md has the list):

* **edge** worlds: two rounds of ``EDGES`` (empty and single-position records, zeros,
  negatives, no optional roots, no history, no users, tiny and huge magnitudes, partial
  date-level objects, shorts, ties, equal weights);
* **crowd** worlds with ``CROWDS`` users (dozens to hundreds): per_date aggregates over users
  (top-k, percentiles, counts) see enough users to tell a top-10 from a top-5. Crowd users
  derive from a pool of drawn records: some are exact ties, some short, some rescaled;
* **real** worlds: the workspace's own data sampled through the sources
  (:class:`~btbuild.sim.realdata.RealSample`), perturbed; drawn worlds stand in without data;
* **drawn** worlds: every value from the source's Hypothesis ``strategy()``; some users short
  or rescaled; some worlds miss random look-back days (weekends, holidays, late data);
* **literal** worlds (:meth:`Fabricator.literal_worlds`, per target): the literals of the
  code seeded into the values, list lengths and user counts (:mod:`btbuild.sim.literals`).

Historical chains: a world's ``chain`` is how many earlier days a historical target runs
before it (``CHAIN_DAYS`` = 5 for every world but the edge ones), so ``ctx.previous`` carries
real multi-day state. Day ``k`` of the chain is the same world shifted ``k`` days (skipping
the world's missing days): its data at ``back`` days ago is the world's data at ``back + k``,
exactly as yesterday's prices are today's look-back.

Determinism: drawn values come from the source's strategy through a private
``ConjectureData`` driven by ``random.Random(seed)``, the seed an xxhash of (fabricator
seed, world, source, days ago, user); every transform has its own seeded ``Random``. Nothing
depends on ``PYTHONHASHSEED``, the clock, the process or a Hypothesis database. Hypothesis'
default provider also draws "local constants" harvested from imported modules (the worlds
would depend on the code under test), so draws go through a provider using only Hypothesis'
fixed global constants. :attr:`Fabricator.version` covers everything the worlds depend on.
"""

from __future__ import annotations

import functools
import math
import platform
import random
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import xxhash

from btbuild.hashing.digest import hash_json
from btbuild.sim import world_store
from btbuild.sim import worlds as transforms
from btbuild.sim.draws import draw
from btbuild.sim.literals import Literals
from btbuild.sim.realdata import HISTORY, RealSample
from btbuild.sim.suspend import fabricating

# bump when the worlds or canonical outputs change: in every SimHash key (4: floats exact;
# 5: partial worlds list other keys on earlier days)
FABRICATOR_VERSION = "5"
PLATFORM = f"{sys.platform}-{platform.machine()}"  # in the version: floats compared exactly
WORLDS = 64  # worlds per simulation (per_user targets get one context per world user)
DEFAULT_SEED = 20240101
FIRST_DAY = date(2023, 1, 2)  # fabricated dates lie in the two years from here
INDEPENDENT_HISTORY = 1  # look-back days drawn independently; deeper ones are random walks
GAP_DAYS = 400  # missing days are drawn among the 400 days before a world's day
CHAIN_DAYS = 5  # earlier days a historical target runs before each (non-edge) world
CROWDS = (20, 40, 80, 150)  # users of the crowd worlds
REAL_WORLDS = 8
POOL = 6  # drawn records the users of crowd and literal worlds derive from
LITERAL_WORLDS = 8
LITERAL_START = 500_000  # world index of the first literal world

EDGE_ROUNDS = 2  # each edge case is tried on this many worlds (different draws)
EDGES = (
    "empty",  # every list in user records is empty (empty portfolio, no trades)
    "single",  # every list in user records keeps only its first element
    "zero",  # every number is 0 (zero prices, zero cash, zero quantities)
    "zero_prices",  # date-level numbers are 0, user records as drawn: NaN-prone divisions
    "zero_users",  # user-level numbers are 0
    "negative",  # every number is negated (negative prices, P&L, quantities)
    "negative_users",  # user-level numbers are negated
    "no_optional",  # optional roots are missing (None) on the day
    "no_history",  # every look-back day is missing (users without history, no previous)
    "no_users",  # the day has no users at all
    "one_user",  # a single user
    "tiny",  # every number is scaled by 1e-12 (near-zero denominators)
    "huge",  # every number is scaled by 1e9
    "partial",  # date-level objects keep two thirds of their keys, others on earlier days
    "shorts",  # every user holds short positions (negative quantities)
    "ties",  # every user has the same records: ties in every ranking
    "equal",  # every list's elements have equal numbers (equal weights, equal prices)
)
_EDGE_END = EDGE_ROUNDS * len(EDGES)
_CROWD_END = _EDGE_END + len(CROWDS)
_REAL_END = _CROWD_END + REAL_WORLDS


@functools.cache
def fabricator_version() -> str:
    """The static part of the version: the fabricator's own version and Hypothesis'.

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
    gaps: frozenset[int] = frozenset()  # days ago (from the world's own day) without data
    kind: str = "drawn"  # "edge", "crowd", "real", "drawn" or "literal"
    shift: int = 0  # day ``shift`` of the world's historical chain (0: the world's day)
    chain: int = 0  # earlier chain days still to run before this one
    literals: Literals | None = None

    def describe(self) -> str:
        text = f"world {self.index}" + (f" ({self.edge})" if self.edge else "")
        if self.kind in ("crowd", "real", "literal"):
            text += f" ({self.kind}, {len(self.users)} users)"
        return text + (f", {self.shift} day(s) earlier in its chain" if self.shift else "")

    @property
    def origin(self) -> date:
        return self.day + timedelta(days=self.shift)


def _seed(*parts: object) -> int:
    return xxhash.xxh64_intdigest("\x1f".join(str(part) for part in parts).encode())


map_numbers = transforms.map_numbers  # kept importable from here
map_lists = transforms.map_lists


def _walk(value: Any, rng: random.Random) -> Any:
    """A day earlier: every float moves by a small random factor (a geometric random walk)."""
    return map_numbers(value, lambda x: x * math.exp(rng.gauss(0.0, 0.02)))


def _ids(rng: random.Random, count: int) -> tuple[str, ...]:
    # ids of different lengths, so code ordering or parsing user ids meets "u10" < "u9"
    ids: set[str] = set()
    while len(ids) < count:
        ids.add(f"u{rng.randrange(10 ** rng.randint(1, 5))}")
    return tuple(sorted(ids))


def strategy_key(source: Any) -> str:
    """What a source's fabricated values depend on besides the code: its strategy version and
    schema (a source may define ``strategy_key()``), else its class."""
    custom = getattr(source, "strategy_key", None)
    if callable(custom):
        return str(custom())
    return f"{type(source).__module__}.{type(source).__qualname__}"


class Fabricator:
    """Worlds and their root data for a set of root sources (name -> RootSource)."""

    def __init__(
        self,
        sources: Mapping[str, Any],
        *,
        seed: int = DEFAULT_SEED,
        start: date | None = None,
        store: Path | None = None,
    ):
        self.sources = dict(sources)
        self.seed = seed
        self.real = RealSample(self.sources, start)
        self.store = store  # the folder keeping drawn values across processes (world_store.py)
        self._strategies: dict[str, Any] = {}
        self._kept: dict[tuple[Any, ...], Any] | None = None
        self._finals: dict[tuple[Any, ...], Any] = {}
        self._worlds: dict[int, World] = {}
        self._version: str | None = None

    @property
    def _values(self) -> dict[tuple[Any, ...], Any]:
        """Drawn values, shared by every fabricator of this version in the process and kept
        on disk (:mod:`btbuild.sim.world_store`)."""
        if self._kept is None:
            with fabricating():  # reading the file is fabrication: never timed nor traced
                key = world_store.store_key(self.version, self.seed)
                self._kept = world_store.shared_values(key, self.store)
        return self._kept

    @property
    def version(self) -> str:
        """The registry's version key: fabricator, Hypothesis, each source's strategy key and
        schema, the fingerprints of the real days sampled, and the platform (outputs are
        compared exactly: a libm rounding a last bit otherwise on another machine makes its
        SimHashes unknown here rather than "different")."""
        if self._version is None:
            parts = {name: strategy_key(source) for name, source in sorted(self.sources.items())}
            key = hash_json([parts, self.real.key, PLATFORM])[:16]
            self._version = f"{fabricator_version()}+{key}"
        return self._version

    @property
    def notes(self) -> list[str]:
        return list(dict.fromkeys(self.real.notes))

    # -- worlds ------------------------------------------------------------------------------

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
        gaps: frozenset[int] = frozenset()
        if rng.random() < 0.3:  # weekends, holidays, late data
            gaps = frozenset(back for back in range(1, GAP_DAYS) if rng.random() < 0.3)
        if index < _EDGE_END:
            edge = EDGES[index % len(EDGES)]
            count = {"no_users": 0, "one_user": 1}.get(edge, rng.choice((1, 2, 3, 4)))
            chain = 0 if edge == "no_history" else 1
            return World(index, day, _ids(rng, count), edge, frozenset(), "edge", 0, chain)
        kind = self._kind(index, rng)
        if kind == "crowd":
            size = CROWDS[index - _EDGE_END] if index < _CROWD_END else rng.randint(20, 200)
            return World(index, day, _ids(rng, size), None, gaps, "crowd", 0, CHAIN_DAYS)
        if kind == "real":
            days = self.real.days()
            real_day = days[index % len(days)]
            users = self.real.users(real_day)
            gaps = self.real.missing_days(real_day, CHAIN_DAYS * 3)
            return World(index, real_day, users, None, gaps, "real", 0, CHAIN_DAYS)
        count = rng.choice((1, 2, 2, 3, 5, 8))
        return World(index, day, _ids(rng, count), None, gaps, "drawn", 0, CHAIN_DAYS)

    def _kind(self, index: int, rng: random.Random) -> str:
        if index < _CROWD_END:
            return "crowd"
        wants_real = index < _REAL_END or (index >= WORLDS and index % 4 == 1)
        if wants_real and self.real.days():
            return "real"
        if index >= WORLDS and index % 4 == 0:
            return "crowd"
        return "drawn"

    def literal_worlds(
        self, literals: Literals, count: int = LITERAL_WORLDS, *, start: int = 0
    ) -> list[World]:
        """Worlds seeded with ``literals`` (deterministic for the literal set); ``start`` > 0
        gives further batches (the coverage search)."""
        if not literals:
            return []
        out = []
        sizes = [c + d for c in literals.counts for d in (-1, 0, 1) if 0 <= c + d <= 200] or [3]
        for offset in range(count):
            index = LITERAL_START + start * 1000 + offset
            rng = random.Random(_seed(self.seed, "literal", index, hash_json(literals.numbers)))
            day = FIRST_DAY + timedelta(days=rng.randrange(730))
            gaps = frozenset(back for back in range(1, GAP_DAYS) if rng.random() < 0.2)
            users = _ids(rng, sizes[offset % len(sizes)])
            out.append(World(index, day, users, None, gaps, "literal", 0, CHAIN_DAYS, literals))
        return out

    def yesterday(self, world: World) -> World | None:
        """The previous day of ``world``'s historical chain (None: the chain starts here).
        Same users; its data at ``back`` days ago is the world's at ``back + shift``."""
        if world.chain <= 0:
            return None
        shift = world.shift + 1
        while shift in world.gaps:  # no data that day: a build has no result for it
            shift += 1
        return replace(
            world, day=world.origin - timedelta(days=shift), shift=shift, chain=world.chain - 1
        )

    # -- values ------------------------------------------------------------------------------

    def _strategy(self, source: str) -> Any:
        if source not in self._strategies:
            self._strategies[source] = self.sources[source].strategy()
        return self._strategies[source]

    def _drawn(self, index: int, source: str, user: str | None, back: int) -> Any:
        """The drawn (or random-walked) value, before any transform and gaps."""
        key = (index, source, user, back)
        if key in self._values:
            return self._values[key]
        with fabricating():
            return self._draw_miss(key, index, source, user, back)

    def _draw_miss(
        self, key: tuple[Any, ...], index: int, source: str, user: str | None, back: int
    ) -> Any:
        if back <= INDEPENDENT_HISTORY:
            value = draw(self._strategy(source), _seed(self.seed, index, source, user, back))
        else:
            previous = self._drawn(index, source, user, back - 1)
            value = _walk(
                previous, random.Random(_seed(self.seed, "walk", index, source, user, back))
            )
        self._values[key] = value
        return value

    def _real(self, world: World, source: str, user: str | None, back: int) -> Any:
        key = ("real", world.index, source, user, back)
        if key in self._values:
            return self._values[key]
        with fabricating():
            return self._real_miss(key, world, source, user, back)

    def _real_miss(
        self, key: tuple[Any, ...], world: World, source: str, user: str | None, back: int
    ) -> Any:
        if back > HISTORY:
            earlier = self._real(world, source, user, back - 1)
            rng = random.Random(_seed(self.seed, "walk", world.index, source, user, back))
            value = None if earlier is None else _walk(earlier, rng)
        else:
            day = world.origin - timedelta(days=back)
            raw = (
                self.real.date_value(source, day)
                if user is None
                else self.real.user_value(source, day, user)
            )
            rng = random.Random(_seed(self.seed, "noise", world.index, source, user, back))
            value = None if raw is None else transforms.perturb(raw, rng)
        self._values[key] = value
        return value

    def _missing(self, world: World, back: int, optional: bool) -> bool:
        if back == 0 and world.shift == 0:
            return optional and world.edge == "no_optional"
        if back == 0:
            return False  # a chain day is a day with data
        return world.edge == "no_history" or back + world.shift in world.gaps

    def date_root(self, world: World, source: str, back: int = 0, *, optional: bool = False) -> Any:
        """A date-scope source's value ``back`` days before the world's day (None: no data).
        Callers copy it before handing it to code (``runner.fresh``)."""
        return self._final(world, source, None, back, optional)

    def user_root(
        self, world: World, source: str, user: str, back: int = 0, *, optional: bool = False
    ) -> Any:
        """A user-scope source's record for ``user`` (None: this user has no record that day)."""
        return self._final(world, source, user, back, optional)

    def _final(self, world: World, source: str, user: str | None, back: int, optional: bool) -> Any:
        """Memoized per world (the transforms cost as much as a warm draw): literal worlds
        are keyed by their literals too (the same index serves other literal sets)."""
        key = (world.index, world.shift, world.literals, source, user, back, optional)
        if key in self._finals:
            return self._finals[key]
        with fabricating():
            value = (
                self._date_root(world, source, back, optional)
                if user is None
                else self._user_root(world, source, user, back, optional)
            )
        self._finals[key] = value
        return value

    def _date_root(self, world: World, source: str, back: int, optional: bool) -> Any:
        if self._missing(world, back, optional):
            return None
        total = back + world.shift
        if world.kind == "real":
            return self._real(world, source, None, total)
        base = LITERAL_START * 2 + world.index if world.kind == "literal" else world.index
        value = self._drawn(base, source, None, total)
        if world.kind == "literal" and world.literals is not None:
            rng = random.Random(_seed(self.seed, "lit", world.index, source, total))
            return transforms.seed_literals(value, world.literals, rng)
        if world.edge == "partial":  # which keys it keeps depends on the day
            return transforms.partial(value, total)
        change = transforms.DATE_EDGES.get(world.edge or "")
        return change(value) if change else value

    def _user_root(self, world: World, source: str, user: str, back: int, optional: bool) -> Any:
        if self._missing(world, back, optional):
            return None
        total = back + world.shift
        if world.kind == "real":
            value = self._real(world, source, user, total)
        else:
            value = self._drawn(world.index, source, self._base_user(world, user), total)
        if value is None:
            return None
        mode_rng = random.Random(_seed(self.seed, "mode", world.index, user))
        if world.kind == "literal" and world.literals is not None:
            value = transforms.user_variant(value, self._mode(world, mode_rng), mode_rng)
            rng = random.Random(_seed(self.seed, "lit", world.index, source, user, total))
            return transforms.seed_literals(value, world.literals, rng)
        if world.edge == "shorts":
            return transforms.short(value, mode_rng, share=0.6)
        if world.kind != "edge":
            value = transforms.user_variant(value, self._mode(world, mode_rng), mode_rng)
        change = transforms.USER_EDGES.get(world.edge or "")
        return change(value) if change else value

    def _base_user(self, world: World, user: str) -> str:
        """The user whose drawn records ``user``'s derive from (pool users in big worlds)."""
        if world.edge == "ties":
            return "p0"
        if world.kind in ("crowd", "literal"):
            return f"p{_seed(self.seed, 'pool', world.index, user) % POOL}"
        return user

    def _mode(self, world: World, rng: random.Random) -> str:
        if world.kind in ("crowd", "literal"):
            return rng.choice(transforms.USER_MODES)
        return rng.choice(("plain", "plain", "plain", "short", "scaled"))


__all__ = ["EDGES", "WORLDS", "Fabricator", "World", "draw", "fabricator_version"]
