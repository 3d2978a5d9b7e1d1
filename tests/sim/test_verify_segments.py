"""``verify`` and the build's cosmetic judge show a segment target only users of its
segment, for plugin-predicate segments too (as the build calls ``process`` only for them)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sim_helpers import ROOT_BUILD, git, verify_json

PLUGIN = """\
def btbuild_segment_predicates():
    return {"two_lines": lambda record: record is not None and len(record["positions"]) >= 2}
"""

BUILD = """\
[calculation.second]
entry = "second:second"
roots = ["portfolio", "prices"]
users = "two_lines"
"""

SECOND = """\
def second(ctx):
    book = ctx.user["portfolio"]
    line = book["positions"][1]  # every user of the segment holds two lines or more
    return round(line["quantity"] * 2.0, 6)
"""

# exact for every user of the segment, not for the others (one line: the doubled list's [1]
# is its only line, not an error). (It used to read ``[-1] if len(...) < 3 else [1]``: a new
# threshold, 3, which is never proven cosmetic since btbuild/sim/constants.py.)
REFACTORED = SECOND.replace(
    'line = book["positions"][1]',
    'line = (book["positions"] * 2)[1]',
)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "calculations" / "book").mkdir(parents=True)
    (root / "plugins").mkdir()
    (root / "plugins" / "seg.py").write_text(PLUGIN)
    (root / "BUILD.toml").write_text(
        ROOT_BUILD.replace(
            'plugins = ["btbuild.plugins.market"]',
            'plugins = ["btbuild.plugins.market", "plugins.seg"]',
        )
        + '\n[segment.two_lines]\nsource = "portfolio"\npredicate = "two_lines"\n'
    )
    (root / "calculations" / "book" / "BUILD.toml").write_text(BUILD)
    (root / "calculations" / "book" / "second.py").write_text(SECOND)
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "base")
    return root


def test_verify_fabricates_users_of_a_predicate_segment(repo: Path, run_cli) -> None:
    (repo / "calculations" / "book" / "second.py").write_text(REFACTORED)
    code, report = verify_json(run_cli, repo)
    (change,) = report["changed"]
    assert change["verdict"] == "cosmetic", change
    assert code == 0 and change["weak"] is False


def test_build_proves_the_refactor_on_users_of_the_segment(repo: Path, run_cli) -> None:
    ws = ("--workspace", str(repo))
    code, first = run_cli(*ws, "build", "//...", "--date", "2024-01-04", "--format", "json")
    assert code == 0, first
    (repo / "calculations" / "book" / "second.py").write_text(REFACTORED)
    code, second = run_cli(*ws, "build", "//...", "--date", "2024-01-04", "--format", "json")
    assert code == 0, second
    cells = {(c["status"], c["reason"]) for c in second["cells"] if c["label"] == "//book:second"}
    assert cells == {("skipped", "cosmetic")}, second
