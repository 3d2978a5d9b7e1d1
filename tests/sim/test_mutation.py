"""Mutation test: the fabricated contexts kill at least 95% of the non-equivalent mutants."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from mutants import Mutant, mutants

from btbuild.session import Session
from btbuild.sim.runner import SimRunner

CORPUS = Path(__file__).parent / "corpus"

# Hand-reviewed mutants that compute the same result on every input a build can see:
# (target#site, description) -> why. A mutant listed here that gets killed fails the test
# (the list would then be wrong, or the sites renumbered).
EQUIVALENT = {
    (
        "concentration#4",
        "GreaterThan -> GreaterThanEqual",
    ): "quantity >= 0 adds zero-value lines: weight 0 changes neither the HHI nor the largest weight",
    (
        "drawdown_alert#7",
        "4 -> +1",
    ): "round(drop, 5) vs round(drop, 4): drop is a difference of two values already rounded to 4 places",
    (
        "sector_exposure#7",
        "Add -> Subtract",
    ): "every sector sum is negated, and so is the total: the shares are unchanged",
    (
        "top_holders#5",
        "2 -> +1",
    ): "round(total, 3) vs round(total, 2): the worths summed are already rounded to cents",
    (
        "unrealized_pnl#7",
        "LessThanEqual -> LessThan",
    ): "a zero-quantity line adds 0 to both the basis and the P&L",
}


def killed(base: SimRunner, mutant: Mutant, tmp: Path) -> bool:
    ws = base.workspace
    target = ws.targets[mutant.name]
    folder = tmp / f"{mutant.name}_{mutant.site}"
    folder.mkdir()
    (folder / target.entry_file.name).write_text(mutant.source)
    changed = dataclasses.replace(target, entry_file=folder / target.entry_file.name)
    mutant_ws = dataclasses.replace(ws, targets={**ws.targets, mutant.name: changed})
    runner = SimRunner(
        mutant_ws, base.sources, fabricator=base.fabricator, deps_from=base, time_limit=0.5
    )
    try:
        runner.prepare(changed)
    except Exception:
        return True  # does not even load
    worlds = base.fabricator.worlds()
    return [c.hash for c in runner.contexts(changed, worlds)] != [
        c.hash for c in base.contexts(target, worlds)
    ]


@pytest.mark.slow
def test_kill_rate_of_non_equivalent_mutants(tmp_path: Path) -> None:
    session = Session(CORPUS)
    base = SimRunner(session.workspace, session.plugins.root_sources())
    every = [
        m
        for name, t in sorted(session.workspace.targets.items())
        for m in mutants(name, t.entry_file.read_text())
    ]
    kinds = {m.kind for m in every}
    assert kinds == {"arithmetic", "comparison", "constant", "boolean", "removed statement"}
    survivors = [m for m in every if not killed(base, m, tmp_path)]
    listed = {(m.key, m.description) for m in every} & set(EQUIVALENT)
    assert listed == set(EQUIVALENT), "an equivalent mutant no longer exists: review the list"
    wrongly_listed = set(EQUIVALENT) - {(m.key, m.description) for m in survivors}
    assert not wrongly_listed, f"listed as equivalent but killed: {wrongly_listed}"
    candidates = [m for m in every if (m.key, m.description) not in EQUIVALENT]
    live = [m for m in survivors if (m.key, m.description) not in EQUIVALENT]
    rate = 1 - len(live) / len(candidates)
    assert len(candidates) >= 100
    assert rate >= 0.95, (
        f"kill rate {rate:.1%}; survivors: {[(m.key, m.description) for m in live]}"
    )
