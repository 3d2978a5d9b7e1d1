"""A fabricated context as a counterexample shows it: date, user, roots, look-back, deps, previous."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from btbuild.sim.calls import Failed
from btbuild.sim.fabricator import World
from btbuild.workspace.model import Target

if TYPE_CHECKING:
    from btbuild.sim.runner import SimRunner


def describe_inputs(
    runner: SimRunner, target: Target, world: World, user: str | None
) -> dict[str, Any]:
    """What a context showed the calculation: date, user, roots of the day, deps, previous."""
    inputs: dict[str, Any] = {"date": world.day.isoformat(), "world": world.describe()}
    if user is not None:
        inputs["user"] = user
    optional = frozenset(target.optional_roots)
    roots: dict[str, Any] = {}
    for source in target.all_roots:
        if runner.sources[source].scope == "user":
            roots[source] = (
                runner.fabricator.user_root(
                    world, source, user or "", 0, optional=source in optional
                )
                if user
                else None
            )
        else:
            roots[source] = runner.fabricator.date_root(
                world, source, 0, optional=source in optional
            )
    inputs["roots"] = roots
    if target.lookback:
        missing = sorted(back - world.shift for back in world.gaps if back > world.shift)
        inputs["history"] = (
            "no look-back data"
            if world.edge == "no_history"
            else f"look-back days (a random walk of the day's data); missing days ago: {missing[:10]}"
        )
    deps = {}
    for label in target.deps:
        dep, out = runner._dep_output(label, world)
        if isinstance(out, dict) and dep.kind == "per_user":
            value = out.get(user) if target.kind == "per_user" else out
        else:
            value = out
        deps[label] = _shown(value)
    if deps:
        inputs["deps"] = deps
    if target.historical:
        previous = runner._previous(target, world)
        inputs["previous"] = (
            previous.get(user)
            if isinstance(previous, dict) and target.kind == "per_user"
            else previous
        )
    return inputs


def _shown(value: Any) -> Any:
    if isinstance(value, Failed):
        return value.canonical()
    if isinstance(value, dict):
        return {key: _shown(item) for key, item in value.items()}
    return value


__all__ = ["describe_inputs"]
