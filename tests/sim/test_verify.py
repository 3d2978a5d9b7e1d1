"""``btbuild verify`` in a temporary git repository: every verdict, exit codes, errors."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from sim_helpers import BOOK_BUILD, VALUE, git, verify_json

COSMETIC = VALUE.replace("position_value", "line_value").replace(
    'invested + book["cash"]', 'book["cash"] + invested'
)
BUG = VALUE.replace("0.0 if bar is None", "1.0 if bar is None").replace(
    'position["quantity"] * bar["close"]', 'position["quantity"] * bar["open"]'
)


@pytest.fixture
def repo(workspace: Path) -> Path:
    git(workspace, "init", "-q")
    git(workspace, "add", ".")
    git(workspace, "commit", "-q", "-m", "base")
    return workspace


def test_cosmetic_change(repo: Path, run_cli) -> None:
    (repo / "calculations" / "book" / "value.py").write_text(COSMETIC)
    code, report = verify_json(run_cli, repo)
    assert code == 0
    assert report == {
        "changed": [
            {
                "label": "//book:value",
                "verdict": "cosmetic",
                "counterexample": None,
                "expected": False,
                "contexts": report["changed"][0]["contexts"],
                "weak": False,
                "reason": "no stored result of the base's code to replay: fabricated evidence only",
                "replay": None,
            }
        ],
        "ok": True,
        "cache": "the workspace's cache holds no stored result of the base's code: "
        "every verdict rests on fabricated evidence alone",
    }
    assert report["changed"][0]["contexts"] >= 64
    assert (
        "worktree" not in git(repo, "worktree", "list").split("\n", 1)[-1]
    )  # only the main tree is left


def test_behaviour_change_has_a_counterexample_and_fails(repo: Path, run_cli) -> None:
    (repo / "calculations" / "book" / "value.py").write_text(BUG)
    code, report = verify_json(run_cli, repo)
    assert code == 1 and report["ok"] is False
    (change,) = report["changed"]
    assert change["label"] == "//book:value" and change["verdict"] == "behaviour_changed"
    counter = change["counterexample"]
    assert counter["old"] != counter["new"]
    assert set(counter["inputs"]["roots"]) == {"portfolio", "prices"}
    # the reason says where the difference is: which fabricated world, and both outputs
    assert change["reason"].startswith(
        "behaviour_changed: the versions differ on fabricated data (world "
    )
    assert "old {" in change["reason"] and "new {" in change["reason"]
    assert "user" in counter["inputs"]
    code, text = run_cli(
        "--workspace", str(repo), "verify", "--base", "HEAD", "--search-seconds", "0", parse=False
    )
    assert code == 1
    assert "behaviour_changed  //book:value" in text and "old:" in text and "new:" in text


def test_expected_change_passes(repo: Path, run_cli) -> None:
    (repo / "calculations" / "book" / "value.py").write_text(BUG)
    code, report = verify_json(run_cli, repo, "--expect-change", "//book:value")
    assert code == 0 and report["ok"] is True
    assert report["changed"][0]["expected"] is True


def test_new_and_removed(repo: Path, run_cli) -> None:
    book = repo / "calculations" / "book"
    (book / "BUILD.toml").write_text(
        BOOK_BUILD.replace("[calculation.total]", "[calculation.grand_total]")
    )
    code, report = verify_json(run_cli, repo)
    assert code == 0
    verdicts = {c["label"]: c["verdict"] for c in report["changed"]}
    assert verdicts == {"//book:grand_total": "new", "//book:total": "removed"}


def test_upstream_change_is_judged_alone(repo: Path, run_cli) -> None:
    """total is unchanged: only value is reported; value's bug does not leak into total's verdict."""
    (repo / "calculations" / "book" / "value.py").write_text(BUG)
    total = repo / "calculations" / "book" / "total.py"
    total.write_text(
        total.read_text().replace(
            'sum(v["worth"] for v in values.values())', 'sum([v["worth"] for v in values.values()])'
        )
    )
    code, report = verify_json(run_cli, repo)
    verdicts = {c["label"]: c["verdict"] for c in report["changed"]}
    assert verdicts == {"//book:total": "cosmetic", "//book:value": "behaviour_changed"}


def test_not_a_git_repository(workspace: Path, run_cli) -> None:
    code, text = run_cli("--workspace", str(workspace), "verify", "--base", "HEAD", parse=False)
    assert code == 2
    assert "not inside a git repository" in text and "Traceback" not in text


def test_bad_revision(repo: Path, run_cli) -> None:
    code, text = run_cli("--workspace", str(repo), "verify", "--base", "no-such-rev", parse=False)
    assert code == 2
    assert "--base 'no-such-rev' is not a commit" in text


def test_unknown_expected_label(repo: Path, run_cli) -> None:
    code, text = run_cli(
        "--workspace",
        str(repo),
        "verify",
        "--base",
        "HEAD",
        "--expect-change",
        "//book:nope",
        parse=False,
    )
    assert code == 2 and "names no calculation" in text


def test_worktree_removed_after_an_error(repo: Path, run_cli) -> None:
    (repo / "calculations" / "book" / "value.py").write_text(COSMETIC)
    run_cli(
        "--workspace",
        str(repo),
        "verify",
        "--base",
        "HEAD",
        "--expect-change",
        "//book:nope",
        parse=False,
    )
    listed = subprocess.run(
        ["git", "-C", str(repo), "worktree", "list"], capture_output=True, text=True
    ).stdout
    assert len(listed.strip().splitlines()) == 1


def test_a_difference_only_on_fabricated_data_says_the_real_cells_agree(
    repo: Path, run_cli
) -> None:
    """A change that only shows on data the real inputs never had (here: cash above 1e7, the
    fabricated "huge" worlds) is a behaviour change of the code; the reason says that the
    replayed stored cells agree and what to do when such data cannot occur."""
    code, _ = run_cli("--workspace", str(repo), "build", "//...", "--date", "2024-01-03")
    assert code == 0
    (repo / "calculations" / "book" / "value.py").write_text(
        VALUE.replace(
            '    return {"invested"',
            '    if book["cash"] > 1e7:\n        invested += 1.0\n    return {"invested"',
        )
    )
    code, report = verify_json(run_cli, repo)
    (change,) = report["changed"]
    assert code == 1 and change["verdict"] == "behaviour_changed", change
    assert change["counterexample"]["found_by"] != "replay"
    reason = change["reason"]
    assert reason.startswith("behaviour_changed: the versions differ on fabricated data"), reason
    assert "stored cell(s) replayed" in reason and "the real data has not had" in reason
    assert "declare that in their schema" in reason
