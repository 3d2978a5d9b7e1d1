"""When fabricated outputs cannot tell code versions apart, and how sources are typed.

A simulation whose contexts nearly all fail, or give one value, proves nothing about a change
(its SimHash is the same for almost any code). ``btbuild sim`` warns about such targets, with
the most common failure, so the user can give the source a schema or fix the calculation's
assumptions; the optimizer and ``verify`` never count them as evidence (``weak``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from btbuild.sim.calls import is_failure
from btbuild.sim.runner import MIN_DISTINCT, SimResult

FAILING_SHARE = 0.9  # more failed contexts than this share: degenerate


def degenerate(result: SimResult) -> str | None:
    """One line saying why ``result`` is degenerate, or None when it is informative."""
    total = len(result.contexts)
    if result.limited:
        return f"its simulation proves nothing: {result.limited}; changes to it cannot be proven cosmetic"
    if total == 0:
        return "no fabricated context at all (no world has users for it)"
    failures = Counter(
        next(iter(run.output.values())) for run in result.contexts if is_failure(run.output)
    )
    failed = sum(failures.values())
    distinct = result.distinct_values
    common = ", ".join(f"{kind} x{count}" for kind, count in failures.most_common(3))
    if distinct < MIN_DISTINCT:
        return (
            f"fabricated outputs are degenerate: {distinct} distinct value(s) in {total} contexts"
            + (f" ({failed} failed: {common})" if failed else "")
            + "; changes to it cannot be proven cosmetic"
        )
    if failed > FAILING_SHARE * total:
        return (
            f"fabricated outputs are degenerate: {failed} of {total} contexts failed ({common}); "
            "the fabricated data may not look like the real data (declare a schema)"
        )
    return None


def source_notes(sources: Mapping[str, Any], names: Iterable[str]) -> list[str]:
    """The ``strategy_note`` of each named source that has one (how its data is typed)."""
    notes = []
    for name in sorted(set(names)):
        source = sources.get(name)
        note = getattr(source, "strategy_note", None) if source is not None else None
        if isinstance(note, str) and note:
            notes.append(note)
    return notes


__all__ = ["degenerate", "source_notes"]
