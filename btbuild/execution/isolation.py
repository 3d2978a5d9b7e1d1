"""Shared inputs of a per_user pass, and the calculations that change them in place.

A pass reads each user's records (``ctx.user[source]``) and per_user dep values once and hands
the same objects to every calculation of the pass: copying them for each would double the cost
of a cold build. A calculation that changes one in place (``positions.sort()``,
``record["x"] = ...``) would then change what the calculations after it see, so results would
depend on which cells happen to run together.

So the pass *checks*: for its first :data:`VERIFY_FIRST` users, and then every
:data:`VERIFY_EVERY`-th, each calculation gets its own copies of the container inputs, and
after the call they are compared with the originals. A calculation found changing them gets
copies for every user from then on (for the rest of the process: ``Environment.mutators``).
When that is found after unchecked users were handed shared objects, the pass runs again from
its start, the changer isolated, so no result computed from a changed input is committed.

The other users are checked too, more cheaply (:func:`snapshot`): before a user is handed to
the calculations of a pass with more than one, its shared values are serialized with
``marshal`` (C, about 3 us for a typical user), and again after the last calculation; when
they differ, someone changed them, and the pass runs again from its start with every one of
its calculations isolated (which one is not known). Before, a change made only for users the
sampled checks never see (``if ctx.user.id == "u000099": record["positions"].sort()``) went
unseen, and the calculations after it stored results computed from the changed record: a
build of them alone stored others (red team 24). Values ``marshal`` cannot hold are checked
with copies, as the sampled users are.
"""

from __future__ import annotations

import marshal
from typing import Any

from btbuild.execution.context import own_copy

VERIFY_FIRST = 16  # users every calculation of a pass is checked on
VERIFY_EVERY = 256  # then one user in this many


class InputsMutated(Exception):  # noqa: N818 - a signal to run the pass again, not an error
    """A calculation changed a shared input after users were handed it unchecked."""


def checked(seq: int) -> bool:
    """Whether the ``seq``-th user of a pass (from 1) is a checked one."""
    return seq <= VERIFY_FIRST or seq % VERIFY_EVERY == 0


def unchecked_before(seq: int) -> bool:
    """Whether users before the ``seq``-th were handed shared inputs unchecked."""
    return seq > VERIFY_FIRST


class Copies:
    """``values.get`` that hands out own copies of container values and remembers them."""

    __slots__ = ("values", "given")

    def __init__(self, values: dict[int, Any]) -> None:
        self.values = values
        self.given: list[tuple[int, Any]] = []

    def __call__(self, index: int) -> Any:
        original = self.values.get(index)
        kind = type(original)
        if kind is not dict and kind is not list:
            return original
        copy = own_copy(original)
        self.given.append((index, copy))
        return copy

    def changed(self) -> bool:
        """Whether the calculation changed one of the copies it was given."""
        return any(copy != self.values.get(index) for index, copy in self.given)


class Snapshot:
    """A user's shared values as ``marshal`` bytes, to compare after the user's last cell."""

    __slots__ = ("keys", "before", "handed")

    def __init__(self, keys: tuple[int, ...], before: bytes) -> None:
        self.keys, self.before = keys, before
        self.handed: list[tuple[int, bytes]] = []  # values handed off during the user (fused)

    def hand(self, index: int, value: Any) -> None:
        """A value put in ``values[index]`` for the cells after (a fused dep's)."""
        self.handed.append((index, marshal.dumps(value)))

    def changed(self, values: dict[int, Any]) -> bool:
        """Whether a value was changed in place (or replaced) since it was taken."""
        try:
            if marshal.dumps(tuple(values.get(key) for key in self.keys)) != self.before:
                return True
            return any(marshal.dumps(values.get(i)) != data for i, data in self.handed)
        except ValueError:  # changed into something marshal cannot hold
            return True


def snapshot(values: dict[int, Any]) -> Snapshot | None:
    """The user's shared values as bytes (None when ``marshal`` cannot hold them)."""
    keys = tuple(values)
    try:
        return Snapshot(keys, marshal.dumps(tuple(values[key] for key in keys)))
    except ValueError:
        return None
