"""Fabricated users of a segment: when a target declares ``users = "NAME"``, the simulation
runner shows it only users of that segment, as a build would.

A field segment (``field`` + ``values``) conforms the drawn record: the field (a dotted path)
is set to one of the accepted values, chosen per world and user, so every fabricated user is
in the segment and every accepted value is exercised. A predicate segment cannot be
conformed: the record is drawn again (under derived keys) until the predicate accepts it, at
most :data:`REDRAWS` times; a user for whom no draw is accepted is not shown (like a build,
which never calls ``process`` for users outside the segment).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import xxhash

from btbuild.workspace.model import Segment

REDRAWS = 8


def conform(segment: Segment, record: Any, world_index: int, user: str) -> Any:
    """``record`` with the segment's field set to an accepted value (a fresh copy)."""
    if not segment.values or not segment.field:
        return record
    choice = xxhash.xxh64_intdigest(f"{segment.name}\x1f{world_index}\x1f{user}".encode())
    value = segment.values[choice % len(segment.values)]
    result: dict[str, Any] = dict(record) if isinstance(record, dict) else {}
    node = result
    parts = segment.field.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        node[part] = dict(child) if isinstance(child, dict) else {}
        node = node[part]
    node[parts[-1]] = value
    return result


def segment_record(
    segment: Segment,
    draw: Callable[[int], Any],
    predicate: Callable[[Any], bool] | None,
    world_index: int,
    user: str,
) -> tuple[bool, Any]:
    """(in segment, record) for one fabricated user; ``draw(k)`` is the k-th draw of the
    user's record of the segment's source (0: the ordinary one)."""
    if segment.predicate is None:
        return True, conform(segment, draw(0), world_index, user)
    if predicate is None:
        return True, draw(0)  # no plugin predicate in this process: shown as drawn
    for attempt in range(REDRAWS):
        record = draw(attempt)
        try:
            if predicate(record):
                return True, record
        except Exception:  # noqa: BLE001 - a failing predicate rejects the draw
            continue
    return False, None
