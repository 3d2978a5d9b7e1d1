"""The ``ctx`` object handed to calculation code (DESIGN.md section 3).

One :class:`Context` is made per cell and re-pointed at each user, so the per-user cost is a
few attribute writes. Every accessor checks the target's declaration: reading a root the
target did not declare, looking further back than its ``lookback`` or asking for a dep it
does not have is a :class:`CalculationError` naming the target, never silent extra input
(which would make the action cache unsound).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from datetime import date, timedelta
from typing import Any

from btbuild.errors import CalculationError
from btbuild.workspace.model import Target

_NOT_LOADED = object()


class UserRecords:
    """``ctx.user``: this user's id and root records (``ctx.user["portfolio"]``)."""

    __slots__ = ("id", "_history", "_owner", "_today")

    def __init__(
        self,
        owner: Context,
        user_id: str,
        today: Mapping[str, Any],
        history: Mapping[tuple[str, int], Any],
    ):
        self._owner = owner
        self.id = user_id
        self._today = today
        self._history = history

    def __getitem__(self, source: str) -> Any:
        today = self._today
        if source not in today:  # not a user source of this target: say why
            self._owner._check_user_source(source, 0)
        return today.get(source)

    def get(self, source: str, default: Any = None, *, days_ago: int = 0) -> Any:
        self._owner._check_user_source(source, days_ago)
        value = self._today.get(source) if days_ago == 0 else self._history.get((source, days_ago))
        return default if value is None else value

    def __contains__(self, source: str) -> bool:
        return self._today.get(source) is not None

    def __repr__(self) -> str:
        return f"<user {self.id}>"


def own_copy(value: Any) -> Any:
    """A copy of a JSON-like value (dicts and lists copied all the way down; anything else
    is shared). A date-scope root's data is loaded once per process and cached: each cell
    gets its own copy, so a calculation that changes it in place (``prices[k] = ...``,
    ``list.sort()``) cannot change what other cells read."""
    kind = type(value)
    if kind is dict:
        return {key: own_copy(item) for key, item in value.items()}
    if kind is list:
        return [own_copy(item) for item in value]
    return value


class Context:
    """What a calculation sees. ``user`` is set for per_user cells only."""

    def __init__(
        self,
        target: Target,
        day: date,
        *,
        root_loader: Callable[[str, date], Any],
        user_sources: frozenset[str],
        dep_names: Mapping[str, str],
        whole_deps: Mapping[str, Any] | None = None,
        dep_history: Mapping[tuple[str, int], Any] | None = None,
        previous: Any = None,
        log: logging.Logger | None = None,
    ):
        self.target = target
        self.date = day
        self.log = log or logging.getLogger(f"btbuild.calc.{target.name}")
        self.previous = previous
        self.user: UserRecords | None = None
        self._root_loader = root_loader
        self._user_sources = user_sources
        self._dep_names = dep_names  # name or label -> dep target name
        self._whole_deps = whole_deps or {}
        self._user_deps: Mapping[str, Any] = {}
        # the executor's per_user deps: dep name or label -> index in ``_values``, this
        # user's stream values (re-pointed per user; see bind_user_deps)
        self._dep_slots: dict[str, int] = {}
        self._values: Mapping[int, Any] = {}
        # (dep name, days ago) -> earlier result: whole values, and this user's values of
        # per_user deps (re-pointed per user like _user_deps)
        self._dep_history: Mapping[tuple[str, int], Any] = dep_history or {}
        self._user_dep_history: Mapping[tuple[str, int], Any] = {}
        self._dep_lookback = {label.rpartition(":")[2]: days for label, days in target.dep_lookback}
        self._roots: dict[tuple[str, int], Any] = {}
        self._lookback = dict(target.lookback)
        self._declared = set(target.all_roots)

    def bind_user_deps(self, slots: Mapping[str, int]) -> None:
        """The executor's way to hand a per_user cell its per_user deps (dep target ->
        index of the dep in each user's stream values, set per user as ``_values``): read
        there by :meth:`dep`, no mapping built per user."""
        self._dep_slots = {
            key: slots[target] for key, target in self._dep_names.items() if target in slots
        }
        self._user_deps = _UserDeps(self, dict(slots))

    def _fail(self, message: str) -> CalculationError:
        return CalculationError(f"{self.target.label}: {message}")

    def _check_days(self, source: str, days_ago: int) -> None:
        if isinstance(days_ago, bool) or not isinstance(days_ago, int) or days_ago < 0:
            raise self._fail(f"days_ago must be a whole number >= 0, got {days_ago!r}")
        allowed = self._lookback.get(source, 0)
        if days_ago > allowed:
            raise self._fail(
                f"{source!r} days_ago={days_ago} is beyond its lookback of {allowed} day(s); "
                f"declare lookback = {{ {source} = {days_ago} }} in BUILD.toml"
            )

    def _check_user_source(self, source: str, days_ago: int) -> None:
        if source not in self._user_sources:
            if source in self._declared:
                raise self._fail(
                    f"{source!r} is a date-level source: read it with ctx.root({source!r})"
                )
            raise self._fail(
                f"reads root source {source!r}, which is not in its roots or optional_roots"
            )
        self._check_days(source, days_ago)

    def root(self, source: str, days_ago: int = 0) -> Any:
        """Date-level root data (``None`` when an optional or look-back day has none)."""
        value = self._roots.get((source, days_ago), _NOT_LOADED)
        if value is _NOT_LOADED:
            key = (source, days_ago)
            if source not in self._declared:
                raise self._fail(
                    f"reads root source {source!r}, which is not in its roots or optional_roots"
                )
            if source in self._user_sources:
                raise self._fail(
                    f"{source!r} is a per-user source: read it with ctx.user[{source!r}]"
                )
            self._check_days(source, days_ago)
            value = self._root_loader(source, self.date - timedelta(days=days_ago))
            self._roots[key] = value
        return value

    def dep(self, name: str, days_ago: int = 0) -> Any:
        """The upstream result: this user's value (per_user cell, per_user dep) or the whole
        one; with ``days_ago`` (within ``dep_lookback``) the dep's result of that many days
        earlier (None when the dep has no result that day, e.g. a weekend)."""
        if not days_ago:
            slot = self._dep_slots.get(name)
            if slot is not None:
                return self._values.get(slot)
        target = self._dep_names.get(name)
        if target is None:
            raise self._fail(
                f"ctx.dep({name!r}): not one of its deps ({', '.join(sorted(set(self._dep_names.values()))) or 'none'})"
            )
        if days_ago:
            return self._dep_earlier(name, target, days_ago)
        if target in self._user_deps:
            return self._user_deps[target]
        return self._whole_deps.get(target)

    def _dep_earlier(self, name: str, target: str, days_ago: int) -> Any:
        if isinstance(days_ago, bool) or not isinstance(days_ago, int) or days_ago < 0:
            raise self._fail(
                f"ctx.dep({name!r}): days_ago must be a whole number >= 0, got {days_ago!r}"
            )
        allowed = self._dep_lookback.get(target, 0)
        if days_ago > allowed:
            raise self._fail(
                f"ctx.dep({name!r}, days_ago={days_ago}) is beyond its dep_lookback of {allowed} day(s); "
                f"declare dep_lookback = {{ {target} = {days_ago} }} in BUILD.toml"
            )
        key = (target, days_ago)
        if target in self._user_deps:
            return self._user_dep_history.get(key)
        return self._dep_history.get(key)

    def __repr__(self) -> str:
        user = f" user={self.user.id}" if self.user is not None else ""
        return f"<ctx {self.target.label} {self.date.isoformat()}{user}>"


class _UserDeps(Mapping[str, Any]):
    """``ctx._user_deps`` of a cell bound by :meth:`Context.bind_user_deps`: this user's
    value of each per_user dep, read from the user's stream values."""

    __slots__ = ("_ctx", "_slots")

    def __init__(self, ctx: Context, slots: dict[str, int]):
        self._ctx = ctx
        self._slots = slots

    def __getitem__(self, target: str) -> Any:
        return self._ctx._values.get(self._slots[target])

    def __contains__(self, target: object) -> bool:
        return target in self._slots

    def __iter__(self) -> Iterator[str]:
        return iter(self._slots)

    def __len__(self) -> int:
        return len(self._slots)
