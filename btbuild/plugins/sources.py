"""The root data source protocol (DESIGN.md section 4) and an in-memory double for tests."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import date
from typing import TYPE_CHECKING, Any, Literal

import xxhash

from btbuild.errors import PluginError
from btbuild.storage.canonical import user_shard as user_shard  # (sources are where it is used)
from btbuild.workspace.labels import NAME_RE

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

Scope = Literal["date", "user"]
SCOPES: tuple[Scope, ...] = ("date", "user")
SOURCE_NAME = NAME_RE


def in_shard(
    stream: Iterable[tuple[str, Any]], shard: int, shards: int
) -> Iterator[tuple[str, Any]]:
    """The (user id, item) pairs of ``stream`` that belong to part ``shard`` of ``shards``."""
    return ((user_id, item) for user_id, item in stream if user_shard(user_id, shards) == shard)


class RootSource(ABC):
    """One named stream of root data, available (or not) per date.

    Subclasses set ``name`` and ``scope`` and implement :meth:`available`,
    :meth:`fingerprint`, :meth:`strategy`, and :meth:`load` (``scope = "date"``) or
    :meth:`users` (``scope = "user"``).
    """

    name: str
    scope: Scope

    @abstractmethod
    def available(self, day: date) -> bool:
        """Whether this source has data for ``day``; cheap, called once per date per build."""

    @abstractmethod
    def fingerprint(self, day: date) -> str:
        """A digest that changes whenever ``day``'s data is (re-)ingested differently.

        Only called for available days. It feeds the root hash of every cell reading the
        source on ``day``, so it must be identical in every process.
        """

    def load(self, day: date) -> Any:
        """The whole JSON value for ``day`` (date scope)."""
        raise PluginError(
            f"root source {self.name!r} has scope {self.scope!r}: it has no load(); use users()"
        )

    def users(self, day: date) -> Iterator[tuple[str, Any]]:
        """``(user_id, record)`` pairs for ``day`` in ascending user-id order (user scope).

        A generator: callers stream it and must never need the whole day in memory.
        """
        raise PluginError(
            f"root source {self.name!r} has scope {self.scope!r}: it has no users(); use load()"
        )

    def users_in_shard(self, day: date, shard: int, shards: int) -> Iterator[tuple[str, Any]]:
        """:meth:`users` restricted to one part of a sharded per_user cell: the users with
        ``user_shard(user_id, shards) == shard``, in the same order. A source that can skip
        the other parts' records cheaply (without reading or generating them) overrides it."""
        return in_shard(self.users(day), shard, shards)

    def load_read(self, day: date) -> tuple[str, Any]:
        """(fingerprint, value) of ``day`` (date scope), the fingerprint naming the data the
        value was read from: a build commits a cell only under the fingerprints of what it
        read. A source that can hash exactly what it reads overrides it (jsonl does); this
        default takes the fingerprint before and after :meth:`load`, and data that changed
        in between gets a fingerprint no plan has."""
        before = self.fingerprint(day)
        value = self.load(day)
        after = self.fingerprint(day)
        return (before if before == after else f"changed while read: {before} -> {after}"), value

    def users_read(
        self, day: date, shard: int = 0, shards: int = 1
    ) -> tuple[Iterator[tuple[str, Any]], Callable[[], str | None]]:
        """:meth:`users` (``shards`` > 1: :meth:`users_in_shard`) and a call that, once the
        iterator is exhausted, gives the fingerprint of exactly the data it read (None: the
        source cannot tell; a build then relies on the fingerprints taken when the stream
        opened and before the commit, which miss data changed and put back in between)."""
        users = self.users(day) if shards == 1 else self.users_in_shard(day, shard, shards)
        return users, unknown_read

    @abstractmethod
    def strategy(self) -> SearchStrategy[Any]:
        """A Hypothesis strategy for one date's value (date scope) or one user's record."""

    def unavailable(self, day: date) -> PluginError:
        """The error to raise when data is asked for on a day :meth:`available` denies."""
        return PluginError(f"root source {self.name!r} has no data for {day.isoformat()}")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} scope={self.scope}>"


def unknown_read() -> str | None:
    """The ``read`` of :meth:`RootSource.users_read` for a source that cannot tell."""
    return None


def check_source(source: object, plugin: str) -> RootSource:
    """Validate one value returned by ``btbuild_root_sources`` of ``plugin``."""
    if not isinstance(source, RootSource):
        raise PluginError(
            f"plugin {plugin!r}: btbuild_root_sources returned {source!r}, expected instances of btbuild.plugins.RootSource"
        )
    name = getattr(source, "name", None)
    if not isinstance(name, str) or not SOURCE_NAME.match(name):
        raise PluginError(
            f"plugin {plugin!r}: root source name {name!r} must match [a-z][a-z0-9_]*"
        )
    if getattr(source, "scope", None) not in SCOPES:
        raise PluginError(
            f"plugin {plugin!r}: root source {name!r} has scope {getattr(source, 'scope', None)!r}, expected 'date' or 'user'"
        )
    return source


class MemorySource(RootSource):
    """A source holding its data in a dict: the test double for every stage.

    ``data`` maps a date to the date's value (date scope) or to a ``{user_id: record}``
    mapping (user scope). The fingerprint is the hash of the canonical JSON of that date's
    data, so replacing a date's data (:meth:`set`) changes exactly that date's fingerprint.
    """

    def __init__(self, name: str, scope: Scope, data: Mapping[date, Any] | None = None):
        self.name = name
        self.scope = scope
        self._data: dict[date, Any] = dict(data or {})

    def set(self, day: date, value: Any) -> None:
        self._data[day] = value

    def remove(self, day: date) -> None:
        self._data.pop(day, None)

    def available(self, day: date) -> bool:
        return day in self._data

    def fingerprint(self, day: date) -> str:
        if day not in self._data:
            raise self.unavailable(day)
        text = json.dumps(self._data[day], sort_keys=True, separators=(",", ":"), allow_nan=False)
        return xxhash.xxh3_128_hexdigest(text.encode())

    def load(self, day: date) -> Any:
        if self.scope != "date":
            return super().load(day)
        if day not in self._data:
            raise self.unavailable(day)
        return self._data[day]

    def users(self, day: date) -> Iterator[tuple[str, Any]]:
        if self.scope != "user":
            yield from super().users(day)
            return
        if day not in self._data:
            raise self.unavailable(day)
        records = self._data[day]
        for user_id in sorted(records):
            yield user_id, records[user_id]

    def strategy(self) -> SearchStrategy[Any]:
        from btbuild.plugins.strategies import json_values

        return json_values()
