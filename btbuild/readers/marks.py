"""The one-letter marks of a cell state, shared by ``btbuild status`` and the HTML report."""

from __future__ import annotations

from typing import Protocol

from btbuild.vocabulary import Reason, Status

MARKS: dict[tuple[str, str], str] = {
    (Status.SKIPPED, Reason.UP_TO_DATE): ".",
    (Status.SKIPPED, Reason.EARLY_CUTOFF): ".",
    (Status.SKIPPED, Reason.COSMETIC): "c",
    (Status.SKIPPED, Reason.EXPIRED): "e",
    (Status.SKIPPED, Reason.NOT_SCHEDULED): " ",
    (Status.IMPOSSIBLE, Reason.NO_DATA): "_",
    (Status.IMPOSSIBLE, Reason.UPSTREAM): "^",
    (Status.BLOCKED, Reason.WAITING_FOR_DEPS): "b",
    (Status.BLOCKED, Reason.WAITING_FOR_PREVIOUS_DAY): "p",
    (Status.DEAD_LETTER, Reason.MAX_ATTEMPTS): "D",
}
RUNNABLE_MARKS: dict[str, str] = {
    Reason.NEW: "N",
    Reason.RETRY: "r",
    Reason.RETRY_DEAD: "r",
    Reason.FORCED: "F",
    Reason.DAMAGED: "X",
}
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


class Decided(Protocol):
    """A cell report: anything with a status and a reason."""

    @property
    def status(self) -> str: ...
    @property
    def reason(self) -> str: ...


def mark(cell: Decided) -> str:
    """The mark of a cell report (anything with ``status`` and ``reason``)."""
    if cell.status == Status.RUNNABLE:
        return RUNNABLE_MARKS.get(cell.reason, "R")
    return MARKS.get((cell.status, cell.reason), "?")
