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
Limit: a change made only for users the checks do not sample goes unseen.
"""

from __future__ import annotations

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
