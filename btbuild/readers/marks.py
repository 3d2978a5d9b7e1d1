"""The one-letter marks of a cell state, shared by ``btbuild status`` and the HTML report."""

from __future__ import annotations

from typing import Any

MARKS = {
    ("skipped", "up_to_date"): ".",
    ("skipped", "early_cutoff"): ".",
    ("skipped", "cosmetic"): "c",
    ("skipped", "expired"): "e",
    ("skipped", "not_scheduled"): " ",
    ("impossible", "no_data"): "_",
    ("impossible", "upstream"): "^",
    ("blocked", "waiting_for_deps"): "b",
    ("blocked", "waiting_for_previous_day"): "p",
    ("dead_letter", "max_attempts"): "D",
}
RUNNABLE_MARKS = {"new": "N", "retry": "r", "retry_dead": "r", "forced": "F", "damaged": "X"}
LEGEND = (
    "legend: . up to date   c cosmetic   e expired (btbuild gc)   N new   R would re-run (changed)   r retry   F forced   X damaged   "
    "_ no data   ^ upstream impossible   b/p blocked (deps / previous day)   D dead letter   (blank) not scheduled"
)
# mark -> (name in the report's legend, colour); the report colours cells with these
MARK_STYLES = {
    ".": ("up to date", "#4caf50"),
    "c": ("cosmetic", "#8bc34a"),
    "e": ("expired (btbuild gc)", "#a5d6a7"),
    "N": ("new", "#2196f3"),
    "R": ("would re-run", "#ff9800"),
    "r": ("retry", "#ffc107"),
    "F": ("forced", "#9c27b0"),
    "X": ("damaged (rebuilt)", "#795548"),
    "_": ("no data", "#9e9e9e"),
    "^": ("upstream impossible", "#cfcfcf"),
    "b": ("blocked (deps)", "#ffeb3b"),
    "p": ("blocked (previous day)", "#fff59d"),
    "D": ("dead letter", "#e53935"),
    "?": ("other", "#f48fb1"),
    " ": ("not scheduled", "#ffffff"),
}


def mark(cell: Any) -> str:
    """The mark of a cell report (anything with ``status`` and ``reason``)."""
    if cell.status == "runnable":
        return RUNNABLE_MARKS.get(cell.reason, "R")
    return MARKS.get((cell.status, cell.reason), "?")
