"""Mechanical mutants of the corpus (tests/sim/mutants.py, a libcst mutator: one site each)."""

from __future__ import annotations

import functools

from harness import TEMPLATE, Edit
from mutants import mutants

LAYER = "corpuslib/bands.py"
LAYER_TARGETS = ("risk_band", "leaderboard")  # the calculations importing the layer


@functools.lru_cache(maxsize=1)
def _all() -> tuple[Edit, ...]:
    found = []
    files = sorted(TEMPLATE.glob("calculations/*/*.py")) + [TEMPLATE / LAYER]
    for path in files:
        relative = path.relative_to(TEMPLATE).as_posix()
        targets = LAYER_TARGETS if relative == LAYER else (path.stem,)
        for mutant in mutants(path.stem, path.read_text()):
            found.append(
                Edit(
                    "mutant",
                    mutant.kind,
                    targets,
                    relative,
                    f"#{mutant.site} {mutant.description}",
                    source=mutant.source,
                )
            )
    return tuple(found)


def corpus_mutants() -> list[Edit]:
    """Every mutant of every corpus file, in a stable order."""
    return list(_all())


def sample(edits: list[Edit], every: int) -> list[Edit]:
    """Every ``every``-th edit (deterministic): the slow test's share of the mutants."""
    return edits[::every]
