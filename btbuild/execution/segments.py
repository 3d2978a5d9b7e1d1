"""User segments at run time: which users of a cell ``process`` is called for.

A target with ``users = "NAME"`` runs only for the users whose record in the segment's
source (on the cell's date) the segment accepts; the others get no call, no result and do
not count in the checks (null density, flatline, circuit breaker).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from btbuild.errors import ConfigError, PluginError
from btbuild.workspace.model import Segment

Accepts = Callable[[Any], bool]


def membership(segment: Segment, predicates: Callable[[], dict[str, Any]]) -> Accepts:
    """``accepts(record) -> bool`` for ``segment``. ``predicates`` gives the plugin
    predicates (called only for a ``predicate =`` segment)."""
    if segment.predicate is None:
        accepted = segment.values
        field_value = segment.field_value

        def by_field(record: Any) -> bool:
            if record is None:
                return False
            value = field_value(record)
            # True == 1 in Python: compare types too, so values = [1] does not accept true
            return any(value == v and type(value) is type(v) for v in accepted)

        return by_field
    found = predicates().get(segment.predicate)
    if found is None:
        raise ConfigError(
            f"segment {segment.name!r}: no plugin provides predicate {segment.predicate!r} "
            "(btbuild_segment_predicates)"
        )
    name = segment.name

    def by_predicate(record: Any) -> bool:
        try:
            return bool(found(record))
        except Exception as exc:
            raise PluginError(
                f"segment {name!r}: predicate {segment.predicate!r} failed: {type(exc).__name__}: {exc}"
            ) from None

    return by_predicate
