"""A workspace plugin of the demo: a domain check on top of btbuild's built-in validators.

Risk scores must stay within 0..100; a result outside that range fails the cell before it is
committed, so no dependent ever reads it. Targets opt in with ``checks = { score_range = true }``
(the key is declared through ``btbuild_check_options`` so a misspelled key is an error).
"""

from __future__ import annotations

from btbuild import ResultValidator, hookimpl


class ScoreRange(ResultValidator):
    """Every numeric ``score`` field (or a bare number) is within [0, 100]."""

    def __init__(self, low: float = 0.0, high: float = 100.0):
        self.low, self.high = low, high
        self.count = 0
        self.examples: list[str] = []

    def observe(self, user_id: str | None, value: object) -> None:
        score = value.get("score") if isinstance(value, dict) else value
        if (
            isinstance(score, (int, float))
            and not isinstance(score, bool)
            and not self.low <= score <= self.high
        ):
            self.count += 1
            if len(self.examples) < 3:
                self.examples.append(f"{user_id or 'value'}: score {score}")

    def finish(self) -> list[str]:
        if not self.count:
            return []
        return [
            f"{self.count} score(s) outside [{self.low:g}, {self.high:g}], e.g. "
            + ", ".join(self.examples)
        ]


@hookimpl
def btbuild_check_options() -> dict[str, str]:
    return {"score_range": "true: every 'score' must lie within 0..100 (demo plugin)"}


@hookimpl
def btbuild_result_validators(
    target_name: str, kind: str, overrides: dict[str, object]
) -> list[ResultValidator]:
    return [ScoreRange()] if overrides.get("score_range") else []


def _traded_today(record: object) -> bool:
    """``[segment.active_trader]``: the user has at least one trade today."""
    return isinstance(record, list) and len(record) > 0


@hookimpl
def btbuild_segment_predicates() -> dict[str, object]:
    return {"traded_today": _traded_today}
