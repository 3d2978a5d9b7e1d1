"""Mechanical mutants of the corpus, one site each.

Two generators: tests/sim/mutants.py (libcst: arithmetic, comparison, constant, boolean,
removed statement, inside functions) and cosmic-ray's operators used as a library
(``cosmic_ray.mutating.mutate_code``) for the kinds the first lacks: loops that never run,
``not`` added to a condition, break <-> continue, unary minus dropped, ``not`` dropped.
"""

from __future__ import annotations

import functools

from cosmic_ray.mutating import mutate_code
from cosmic_ray.plugins import get_operator
from harness import TEMPLATE, Edit
from mutants import mutants

LAYER = "corpuslib/bands.py"
LAYER_TARGETS = ("risk_band", "leaderboard")  # the calculations importing the layer
COSMIC_RAY = (
    "ZeroIterationForLoop",
    "AddNot",
    "ReplaceBreakWithContinue",
    "ReplaceContinueWithBreak",
    "ReplaceUnaryOperator_USub_UAdd",
    "ReplaceUnaryOperator_Delete_Not",
)


def _cosmic_ray(relative: str, targets: tuple[str, ...], source: str) -> list[Edit]:
    found = []
    stem = relative.rsplit("/", 1)[-1].removesuffix(".py")
    for name in COSMIC_RAY:
        operator = get_operator(f"core/{name}")()
        occurrence = 0
        while (mutated := mutate_code(source, operator, occurrence)) is not None:
            if mutated != source:
                description = f"cr {name}@{occurrence}"
                found.append(
                    Edit(
                        "mutant",
                        f"cosmic-ray {name}",
                        targets,
                        relative,
                        description,
                        source=mutated,
                    )
                )
            occurrence += 1
    assert all(edit.id.startswith(stem) for edit in found)
    return found


@functools.lru_cache(maxsize=1)
def _all() -> tuple[Edit, ...]:
    found, extra = [], []
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
        extra.extend(_cosmic_ray(relative, targets, path.read_text()))
    return (*found, *extra)  # cosmic-ray's last: samples of the libcst mutants stay put


def corpus_mutants() -> list[Edit]:
    """Every mutant of every corpus file, in a stable order."""
    return list(_all())


def sample(edits: list[Edit], every: int) -> list[Edit]:
    """Every ``every``-th edit (deterministic): the slow test's share of the mutants."""
    return edits[::every]
