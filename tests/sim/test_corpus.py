"""The corpus: hand-written refactors must be cosmetic, hand-written bugs behaviour changes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from corpus_variants import BUGS, REFACTORS, Edit

from btbuild.session import Session
from btbuild.sim.verify import BEHAVIOUR_CHANGED, COSMETIC, VerifyOptions, compare_workspaces
from btbuild.workspace.config import load_workspace

CORPUS = Path(__file__).parent / "corpus"


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus") / "base"
    shutil.copytree(CORPUS, root)
    return root


def apply(base: Path, target: Path, edit: Edit) -> Path:
    name, _description, replacements = edit
    shutil.copytree(base, target)
    path = target / "calculations" / "c" / f"{name}.py"
    text = path.read_text()
    for old, new in replacements:
        assert old in text, f"{name}: edit does not apply: {old!r}"
        text = text.replace(old, new)
    path.write_text(text)
    return target


def judge(base: Path, edited: Path) -> dict:
    session = Session(edited)
    report = compare_workspaces(
        session, load_workspace(base), VerifyOptions(base="corpus", search_seconds=0.3)
    )
    (change,) = report.changed
    return change


def test_corpus_is_big_enough() -> None:
    assert len(load_workspace(CORPUS).targets) >= 10
    assert len({edit[0] for edit in REFACTORS}) >= 10 and len({edit[0] for edit in BUGS}) >= 10


@pytest.mark.parametrize("edit", REFACTORS, ids=[f"{e[0]}:{e[1][:30]}" for e in REFACTORS])
def test_refactor_is_cosmetic(base: Path, tmp_path: Path, edit: Edit) -> None:
    change = judge(base, apply(base, tmp_path / "edited", edit))
    assert change.verdict == COSMETIC, change.counterexample


@pytest.mark.parametrize("edit", BUGS, ids=[f"{e[0]}:{e[1][:30]}" for e in BUGS])
def test_bug_is_a_behaviour_change(base: Path, tmp_path: Path, edit: Edit) -> None:
    change = judge(base, apply(base, tmp_path / "edited", edit))
    assert change.verdict == BEHAVIOUR_CHANGED
    counter = change.counterexample
    assert counter["old"] != counter["new"]
    assert counter["inputs"]["date"]
