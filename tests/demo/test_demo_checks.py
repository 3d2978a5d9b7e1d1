"""The demo workspace's own plugin (plugins/demo_checks.py): a domain check on risk scores."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load():
    spec = importlib.util.spec_from_file_location(
        "demo_checks_under_test", ROOT / "plugins" / "demo_checks.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_scores_in_range_pass_and_out_of_range_fail():
    module = load()
    check = module.ScoreRange()
    for user, score in [
        ("u1", 0),
        ("u2", 100.0),
        ("u3", {"score": 55.5}),
        ("u4", None),
        ("u5", {"other": 500}),
    ]:
        check.observe(user, score)
    assert check.finish() == []
    check.observe("u6", {"score": 100.5})
    check.observe("u7", -1)
    assert check.finish() == ["2 score(s) outside [0, 100], e.g. u6: score 100.5, u7: score -1"]


def test_only_targets_that_opt_in_get_the_check():
    module = load()
    assert module.btbuild_result_validators("x", "per_user", {}) == []
    assert len(module.btbuild_result_validators("x", "per_user", {"score_range": True})) == 1
    assert "score_range" in module.btbuild_check_options()


def test_the_demo_workspace_opts_in_for_portfolio_risk():
    from btbuild.session import Session

    session = Session(ROOT)
    target = session.workspace.targets["portfolio_risk"]
    validators = session.plugins.validators(
        target.name, target.kind, target.checks, target.build_file
    )
    assert any(type(v).__name__ == "ScoreRange" for v in validators)
