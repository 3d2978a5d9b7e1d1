"""Built-in heuristic result checks, registered as a plugin like any other.

* flatline: every value of a large result is the same (default: at least 50 items);
* null density: more than half of the values are ``None`` (default: at least 20 items).

Per-target overrides in the target's ``checks`` table: ``flatline = false``,
``null_density = 0.9`` (or ``false``), ``min_items = 500`` (the minimum for both checks).
NaN/Infinity are refused by the storage codec, so they are not checked here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from btbuild.errors import ConfigError
from btbuild.plugins.hookspecs import hookimpl
from btbuild.plugins.validators import ResultValidator

FLATLINE_MIN_ITEMS = 50
NULL_DENSITY_MIN_ITEMS = 20
NULL_DENSITY_THRESHOLD = 0.5

OPTIONS = {
    "flatline": "false turns off the check that all values of a large result are identical",
    "null_density": "largest allowed share of None values (0..1, default 0.5), or false to turn the check off",
    "min_items": "fewest items before the flatline and null density checks apply (default 50 and 20)",
}


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr)


class FlatlineCheck(ResultValidator):
    """Fails when at least ``min_items`` values were observed and all of them are identical."""

    def __init__(self, target_name: str, min_items: int = FLATLINE_MIN_ITEMS):
        self.target_name = target_name
        self.min_items = min_items
        self.count = 0
        self.first: str | None = None
        self.varied = False

    def observe(self, user_id: str | None, value: object) -> None:
        self.count += 1
        if self.varied:
            return
        text = _canonical(value)
        if self.first is None:
            self.first = text
        elif text != self.first:
            self.varied = True  # from here on each item costs one comparison of a bool
            self.settled = True  # and the executor stops calling: a varied result passes

    def finish(self) -> list[str]:
        if self.varied or self.count < self.min_items or self.count < 2:
            return []
        shown = (
            self.first
            if self.first is not None and len(self.first) <= 60
            else f"{(self.first or '')[:57]}..."
        )
        return [
            f"target {self.target_name!r}: flatline: all {self.count} values are identical ({shown}); if that is expected set checks = {{ flatline = false }}"
        ]


class NullDensityCheck(ResultValidator):
    """Fails when more than ``threshold`` of at least ``min_items`` values are ``None``."""

    def __init__(
        self,
        target_name: str,
        threshold: float = NULL_DENSITY_THRESHOLD,
        min_items: int = NULL_DENSITY_MIN_ITEMS,
    ):
        self.target_name = target_name
        self.threshold = threshold
        self.min_items = min_items
        self.count = 0
        self.nulls = 0

    def observe(self, user_id: str | None, value: object) -> None:
        self.count += 1
        if value is None:
            self.nulls += 1

    def finish(self) -> list[str]:
        if self.count < self.min_items or self.count == 0:
            return []
        density = self.nulls / self.count
        if density <= self.threshold:
            return []
        return [
            f"target {self.target_name!r}: null density {density:.0%} ({self.nulls} of {self.count} values are None) is above {self.threshold:g}; raise checks.null_density if that is expected"
        ]


def _bad(target_name: str, key: str, value: object, expected: str) -> ConfigError:
    return ConfigError(
        f"target {target_name!r}: checks.{key} = {value!r} is invalid, expected {expected}"
    )


def validators_for(target_name: str, overrides: Mapping[str, object]) -> list[ResultValidator]:
    """The built-in validators for ``target_name`` with its ``checks`` overrides applied."""
    min_items = overrides.get("min_items")
    if min_items is not None and (
        not isinstance(min_items, int) or isinstance(min_items, bool) or min_items < 1
    ):
        raise _bad(target_name, "min_items", min_items, "a positive integer")
    flatline = overrides.get("flatline", True)
    if not isinstance(flatline, bool):
        raise _bad(target_name, "flatline", flatline, "true or false")
    density = overrides.get("null_density", NULL_DENSITY_THRESHOLD)
    if density is True or not (
        density is False or (isinstance(density, int | float) and 0 <= density <= 1)
    ):
        raise _bad(target_name, "null_density", density, "a number between 0 and 1, or false")

    validators: list[ResultValidator] = []
    if flatline:
        validators.append(FlatlineCheck(target_name, min_items or FLATLINE_MIN_ITEMS))
    if density is not False:
        validators.append(
            NullDensityCheck(target_name, float(density), min_items or NULL_DENSITY_MIN_ITEMS)
        )
    return validators


@hookimpl
def btbuild_check_options() -> dict[str, str]:
    return dict(OPTIONS)


@hookimpl
def btbuild_result_validators(
    target_name: str, overrides: Mapping[str, object]
) -> list[ResultValidator]:
    return validators_for(target_name, overrides)
