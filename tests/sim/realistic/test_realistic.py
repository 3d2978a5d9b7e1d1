"""The realistic corpus (issue 11 "Done when"), through the real ``verify`` and ``build``.

Quick (normal suite): the corpus covers the issue (calculations, classes of bugs, refactors,
mutant operators) and every edit applies and changes the code hash of what it edits.
Slow: every hand-written edit and a sample of the mutants on a built git workspace
(harness.py): a behaviour change must never be skipped as cosmetic nor pass ``verify``; a
refactor must keep the real results and should be proven cosmetic. Cases the commands
currently get wrong are ``xfail(strict=True)`` with the class of failure: they flip (and
fail) when fixed, so the lists below stay exact. ``bench/bench_corpus.py`` prints the figures
over every mutant.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("cosmic_ray", reason="cosmic-ray is a test extra: pip install -e '.[test]'")

from corpus_mutants import corpus_mutants, sample
from edits import BUGS, REFACTORS
from figures import REFACTORS_PROVEN
from harness import LABELS, TEMPLATE, Edit, Outcome, cli, make_base, run_case

from btbuild.workspace.config import load_workspace

ISSUE_CLASSES = {
    "threshold",
    "small count",
    "previous",
    "top-k",
    "percentile",
    "shorts",
    "jsonl",
    "look-back",
    "rounding",
}
MUTANTS_EVERY = 40  # the full slow run's sample (9 mutants); the bench runs them all

# One case costs 10-90 s (mostly world fabrication and replay), so the slow run takes one
# behaviour change per class (the hardest), a few refactors and two mutants; with
# BTBUILD_CORPUS_FULL=1 it takes every hand-written edit and every 40th mutant.
FULL = os.environ.get("BTBUILD_CORPUS_FULL") == "1"
CORE = {
    "risk_band:balanced up to 0.28",
    "volume_surge:three days are too few",
    "loss_streak:alert after 4 days",
    "equity_curve:peak from yesterday's worth",
    "realized_total:total from yesterday's day",
    "leaderboard:top 5",
    "leaderboard:p95 for p90",
    "exposure:short side subtracted",
    "exposure:cash left out of equity",
    "margin_call:maintenance 30%",
    "volume_surge:six calendar days",
    "pnl_bucket:whole percent",
    "band_mix:mode is the rarest band",
    "holdings:concentration helper",
    "equity_curve:first day through a default previous",
    "exposure:gross first",
    "margin_call:levels through the band layer",
    'equity_curve:#0 book = ctx.dep("holdings")',
    "exposure:#8 Multiply -> Divide",
}

# Behaviour changes the commands currently miss: edit id -> class of failure and the missing
# evidence. Details in /work/notes/corpus-findings.md.
# Measured on main 3e3b77d (replay, coverage, worlds, typed JSONL), 10:15 UTC: none; sim-replay
# measured 37 of 37 re-run at 09:55 UTC too. On b1e2a01 (before) 21 of the 37 were missed:
# thresholds, carried previous state, crowds, untyped JSONL (docs/dev/sim-corpus.md).
KNOWN_MISSES: dict[str, str] = {}

# Refactors not proven cosmetic (they re-run, which is safe): id -> why.
UNPROVEN_REFACTORS: dict[str, str] = {
    # measured on main 3e3b77d (CORE) and the sim-worlds branch 78900d8 (the others)
    "leaderboard:users sorted by a key on the dict": "re-run (code_changed), not proven",
    "band_mix:collections.Counter": "re-run (code_changed), not proven",
    "realized_total:one return with a default previous": "re-run (code_changed), not proven",
}

# Sampled mutants the commands currently miss: id -> class of failure.
KNOWN_MUTANT_MISSES: dict[str, str] = {}

SAMPLED_MUTANTS = sample(corpus_mutants(), MUTANTS_EVERY)


def _params(edits: list[Edit], known: dict[str, str]) -> list[Any]:
    edits = [edit for edit in edits if FULL or edit.id in CORE]
    return [
        pytest.param(
            edit,
            id=edit.id,
            marks=[pytest.mark.xfail(strict=True, reason=known[edit.id])]
            if edit.id in known
            else [],
        )
        for edit in edits
    ]


def test_corpus_covers_the_issue() -> None:
    targets = list(load_workspace(TEMPLATE).targets.values())
    assert len(targets) >= 10
    assert {t.kind for t in targets} == {"per_user", "per_date"}
    assert any(t.historical and t.kind == "per_user" for t in targets)
    assert any(t.historical and t.kind == "per_date" for t in targets)
    assert any(t.lookback for t in targets)
    assert len(BUGS) >= 30 and len(REFACTORS) >= 25
    assert {edit.klass for edit in BUGS} >= ISSUE_CLASSES
    every = [*BUGS, *REFACTORS, *corpus_mutants()]
    assert len({edit.id for edit in every}) == len(every)
    kinds = {edit.klass for edit in every if edit.kind == "mutant"}
    assert {"arithmetic", "comparison", "constant", "boolean", "removed statement"} < kinds
    assert {"cosmic-ray ZeroIterationForLoop", "cosmic-ray AddNot"} < kinds
    assert set(KNOWN_MISSES) <= {edit.id for edit in BUGS}
    assert set(UNPROVEN_REFACTORS) <= {edit.id for edit in REFACTORS}
    assert set(KNOWN_MUTANT_MISSES) <= {edit.id for edit in SAMPLED_MUTANTS}
    assert {edit.id for edit in [*BUGS, *REFACTORS, *SAMPLED_MUTANTS]} >= CORE
    assert {edit.klass for edit in BUGS if edit.id in CORE} >= ISSUE_CLASSES


@pytest.mark.xfail(strict=True, reason="24 of 27 refactors proven (88.9%): see UNPROVEN_REFACTORS")
def test_refactors_proven_target() -> None:
    """The refactors listed as unproven are exact (strict xfails): at most 10% may be."""
    assert len(UNPROVEN_REFACTORS) <= (1 - REFACTORS_PROVEN) * len(REFACTORS)


def test_no_behaviour_change_is_missed() -> None:
    assert not KNOWN_MISSES and not KNOWN_MUTANT_MISSES


def _code_hashes(root: Path, targets: tuple[str, ...]) -> dict[str, tuple[str, str]]:
    code, text = cli(root, "hash", *[LABELS[t] for t in targets], "--format", "json")
    assert code == 0, text
    return {t["name"]: (t["code"], t["layers"]) for t in json.loads(text)["targets"]}


@pytest.fixture(scope="module")
def hashes_before(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, str]]:
    root = tmp_path_factory.mktemp("hashes") / "ws"
    shutil.copytree(TEMPLATE, root)  # btbuild hash keeps a cache in the workspace
    return _code_hashes(root, tuple(LABELS))


@pytest.mark.parametrize("edit", [*BUGS, *REFACTORS], ids=lambda edit: edit.id)
def test_edit_changes_the_code(
    edit: Edit, tmp_path: Path, hashes_before: dict[str, tuple[str, str]]
) -> None:
    root = tmp_path / "ws"
    shutil.copytree(TEMPLATE, root)
    before = {t: hashes_before[t] for t in edit.targets}
    edit.apply(root)
    after = _code_hashes(root, edit.targets)
    assert all(after[t] != before[t] for t in edit.targets), "normalized away: proves nothing"


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_base(tmp_path_factory.mktemp("realistic") / "base")


def _judge_change(outcome: Outcome) -> None:
    assert not outcome.build_missed, f"skipped as cosmetic: {outcome.summary()}"
    assert not outcome.verify_missed, f"verify exit 0: {outcome.summary()}"


@pytest.mark.slow
@pytest.mark.parametrize("edit", _params(BUGS, KNOWN_MISSES))
def test_behaviour_change_is_never_skipped(base: Path, tmp_path: Path, edit: Edit) -> None:
    outcome = run_case(base, edit, tmp_path / "case")
    assert outcome.changed, f"the oracle sees no difference on real data:\n{outcome.log}"
    _judge_change(outcome)


@pytest.mark.slow
@pytest.mark.parametrize("edit", _params(REFACTORS, UNPROVEN_REFACTORS))
def test_refactor_keeps_results_and_is_proven(base: Path, tmp_path: Path, edit: Edit) -> None:
    outcome = run_case(base, edit, tmp_path / "case")
    assert not outcome.changed, f"not a refactor: {outcome.difference}"
    assert outcome.proven, outcome.summary()


@pytest.mark.slow
@pytest.mark.parametrize("edit", _params(SAMPLED_MUTANTS, KNOWN_MUTANT_MISSES))
def test_mutant_is_detected_or_equivalent(base: Path, tmp_path: Path, edit: Edit) -> None:
    outcome = run_case(base, edit, tmp_path / "case")
    if outcome.changed:
        _judge_change(outcome)


def test_harness_end_to_end(tmp_path: Path) -> None:
    """The quick share of the measurement: one refactor and one bug of //book:risk_band."""
    small = make_base(tmp_path / "base", ("//book:risk_band",))
    by_id = {edit.id: edit for edit in [*BUGS, *REFACTORS]}
    proven = run_case(small, by_id["risk_band:int(thin)"], tmp_path / "refactor")
    assert not proven.changed and proven.proven, proven.summary()
    assert proven.verify_code == 0 and proven.verdicts == ("cosmetic",), proven.summary()
    caught = run_case(small, by_id["risk_band:five positions are thin"], tmp_path / "bug")
    assert caught.changed and "u0000" in caught.difference, caught.summary()
    assert caught.verify_code == 1 and caught.verdicts == ("behaviour_changed",)
    assert not caught.cosmetic_cells("risk_band"), caught.summary()
