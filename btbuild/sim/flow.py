"""How a change flows through a target's functions (see :mod:`btbuild.sim.changes`).

Inside a function, the statements reading a name a changed statement binds must run too,
transitively (:func:`_flow`); a statement calling a function whose value may have changed
counts as changed (:func:`flow_calls`, to a fixed point); and an unchanged function a
changed statement calls must run its statements reading its parameters
(:func:`_flow_into_callees`).
"""

from __future__ import annotations

from typing import Any


def _flow(unit: Any, changed: set[int]) -> set[int]:
    """``changed`` and, transitively, the statements of the function reading a name a changed
    statement binds: a changed value can surface only behind an unchanged condition (``bonus =
    cash * 0.2`` used under ``if ctx.user.id == "u000500":``), which must then run too."""
    out = set(changed)
    pending = sorted(changed)
    while pending:
        at = pending.pop()
        source = unit.items[at]
        if not source.binds:
            continue
        # later statements; inside a loop, the whole loop (the next round reads it)
        start = source.loop if source.loop >= 0 else at + 1
        for index in range(max(start, 0), len(unit.items)):
            item = unit.items[index]
            if index not in out and item.line and not source.binds.isdisjoint(item.loads):
                out.add(index)
                pending.append(index)
    return out


def flow_calls(side: Any) -> None:
    """``side.flowed``: each function's changed statements and their readers (:func:`_flow`),
    where a statement calling a function whose value may have changed (one with a changed or
    flowed statement, by name) counts as changed too, to a fixed point: ``b = bonus_of(cash)``
    read under an unchanged rare condition, ``bonus_of``'s body edited. So does a statement
    naming a class whose body changed: ``Fees()`` for one user, ``Fees(rate=0.002)`` for the
    others, when the dataclass default ``rate: float = 0.001`` is edited."""
    functions = [key for key, unit in side.units.items() if unit.kind == "function"]
    moved: set[str] = {
        key[1].split(".")[-1]
        for key, unit in side.units.items()
        if unit.kind == "class" and side.changed.get(key)
    }
    while True:
        for key in functions:
            unit = side.units[key]
            seeds = set(side.changed.get(key, ()))
            seeds.update(
                index
                for index, item in enumerate(unit.items)
                if item.line and not moved.isdisjoint(item.loads)
            )
            side.flowed[key] = _flow(unit, seeds)
        now = {key[1].split(".")[-1] for key in functions if side.flowed[key]}
        if now <= moved:
            _flow_into_callees(side, functions)
            return
        moved |= now


def _flow_into_callees(side: Any, functions: list[tuple[str, str]]) -> None:
    """A changed (or flowed) statement may pass a changed value to an unchanged function of
    these files, which may use it only behind a rare condition (``adjust(worth, user, 1.5)``
    where ``adjust`` multiplies only for one user): the callee's statements reading its
    parameters, and their readers, must run too, transitively (``side.called``): run only,
    their branches need not go both ways (that would ask for inputs the callers never pass,
    e.g. an empty list where the caller returned early). They do not make the callee's
    value "changed" for its other callers (those pass what they passed before)."""
    by_name: dict[str, list[tuple[str, str]]] = {}
    for key in functions:
        by_name.setdefault(key[1].split(".")[-1], []).append(key)
    pending = [key for key in functions if side.flowed.get(key)]
    done: set[tuple[str, str]] = set()
    while pending:
        key = pending.pop()
        unit = side.units[key]
        passing = side.flowed.get(key, set()) | side.called.get(key, set())
        called = {name for index in passing for name in unit.items[index].loads}.intersection(
            by_name
        )
        for callee in (found for name in called for found in by_name[name]):
            if callee in done:
                continue
            done.add(callee)
            target = side.units[callee]
            seeds = {
                index
                for index, item in enumerate(target.items)
                if item.line and not target.params.isdisjoint(item.loads)
            }
            side.called[callee] = _flow(target, seeds) - side.flowed.get(callee, set())
            if side.called[callee]:
                pending.append(callee)


__all__ = ["flow_calls"]
