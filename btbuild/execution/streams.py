"""User streams: ascending ``(user id, value)`` iterators, read once and merged.

The per_user cells of a group read every user-scope root source and per_user result they
need through one :class:`StreamTable`: each stream is opened once however many cells read
it, and :func:`merge_streams` merges them into one pass over the users in ascending order.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from datetime import date
from functools import partial
from typing import Any

from btbuild.errors import BtbuildError, SourceError
from btbuild.execution.environment import Environment, stream_name
from btbuild.execution.tasks import GroupTask
from btbuild.storage.base import Backend


def result_stream(
    backend: Backend,
    name: str,
    day: date,
    expected: str | None = None,
    part: tuple[int, int] | None = None,
) -> Iterator[tuple[str, Any]]:
    """The users of a per_user result (empty when there is none and none was expected);
    ``part`` ``(shard, shards)``: only that part's users are parsed (every line is still
    checked and hashed)."""
    if expected is None and not backend.has_result(name, day.isoformat()):
        return iter(())
    return backend.iter_result(name, day.isoformat(), expected, part)


class StreamTable:
    """The user streams of one group's per_user pass, by (kind, name, day): an index each,
    a name for messages, and how to open it (a part of a sharded group reads its users)."""

    def __init__(self, env: Environment, group: GroupTask):
        self.env = env
        self.group = group
        self.index: dict[tuple[str, str, date], int] = {}
        self.factories: list[Callable[[], Iterator[tuple[str, Any]]]] = []
        self.names: list[str] = []  # what each stream is, for messages
        # (source, day) -> the fingerprint of what the root stream read, once exhausted
        self._read: dict[tuple[str, date], Callable[[], str | None]] = {}

    def stream(self, kind: str, name: str, day: date, expected: str | None = None) -> int:
        """The index of a stream (``kind`` ``root`` or ``result``), added on first use.
        ``expected``: the result hash the cell was planned with (a result stream that does
        not match it is damaged, never empty)."""
        key = (kind, name, day)
        if key not in self.index:
            self.index[key] = len(self.factories)
            self.names.append(stream_name(kind, name, day))
            self.factories.append(self._factory(kind, name, day, expected))
        return self.index[key]

    def _factory(
        self, kind: str, name: str, day: date, expected: str | None
    ) -> Callable[[], Iterator[tuple[str, Any]]]:
        env, group = self.env, self.group
        if kind == "root":  # a source reads only the part's users where it can
            return partial(self._open_root, name, day)
        part = (group.shard, group.shards) if group.shards > 1 else None
        return partial(result_stream, env.backend, name, day, expected, part)

    def open(self) -> list[Iterator[tuple[str, Any]]]:
        return [factory() for factory in self.factories]

    def _open_root(self, source: str, day: date) -> Iterator[tuple[str, Any]]:
        users, self._read[(source, day)] = self.env.users_read(
            source, day, self.group.shard, self.group.shards
        )
        return users

    def read_stamps(self) -> dict[tuple[str, date], str]:
        """The fingerprints of exactly the root data the streams read to their end (those
        the source can tell): what a cell's root stamps are, whatever the files say now."""
        found = {key: read() for key, read in self._read.items()}
        return {key: stamp for key, stamp in found.items() if stamp is not None}


def _tag(stream: Iterator[tuple[str, Any]], index: int) -> Iterator[tuple[str, int, Any]]:
    for user_id, value in stream:
        yield user_id, index, value


def _disorder(names: list[str] | None, index: int, user_id: str, previous: str) -> BtbuildError:
    what = names[index] if names else f"user stream {index}"
    return SourceError(
        f"{what} is not in ascending user order: {user_id!r} came after {previous!r} "
        "(a source must yield its users sorted by id)",
        stream=what,
    )


def merge_streams(
    streams: list[Iterator[tuple[str, Any]]], names: list[str] | None = None
) -> Iterator[tuple[str, dict[int, Any]]]:
    """Merge ascending (user id, value) streams into (user id, {stream index: value});
    ``names`` say what each stream is in the error for a stream out of order."""
    if len(streams) == 1:
        previous: str | None = None
        for user_id, value in streams[0]:
            if previous is not None and user_id <= previous:
                raise _disorder(names, 0, user_id, previous)
            previous = user_id
            yield user_id, {0: value}
        return
    tagged = [_tag(stream, index) for index, stream in enumerate(streams)]
    current: str | None = None
    values: dict[int, Any] = {}
    last_seen: dict[int, str] = {}
    for user_id, index, value in heapq.merge(*tagged, key=lambda item: (item[0], item[1])):
        seen = last_seen.get(index)
        if seen is not None and user_id <= seen:
            raise _disorder(names, index, user_id, seen)
        last_seen[index] = user_id
        if user_id != current:
            if current is not None:
                yield current, values
            current, values = user_id, {}
        values[index] = value
    if current is not None:
        yield current, values
