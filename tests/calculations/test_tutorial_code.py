"""The calculation written in docs/tutorial.md works as the tutorial says."""

from __future__ import annotations

import re

from calc_harness import REPO, tomllib

TUTORIAL = (REPO / "docs" / "tutorial.md").read_text(encoding="utf-8")


class Ctx:
    def __init__(self, value):
        self._value = value

    def dep(self, name):
        assert name == "portfolio_value"
        return self._value


def test_tutorial_calculation_runs_and_guards_division():
    code = next(
        block
        for block in re.findall(r"```python\n(.*?)```", TUTORIAL, re.S)
        if "def cash_ratio" in block
    )
    namespace: dict = {}
    exec(compile(code, "tutorial:cash_ratio", "exec"), namespace)
    cash_ratio = namespace["cash_ratio"]
    assert cash_ratio(Ctx({"cash": 25.0, "total": 100.0})) == {"cash_ratio": 0.25}
    assert cash_ratio(Ctx({"cash": 0.0, "total": 0.0})) == {"cash_ratio": 0.0}
    assert cash_ratio(Ctx(None)) is None


def test_tutorial_declaration_parses_and_names_a_real_dep():
    block = next(b for b in re.findall(r"```toml\n(.*?)```", TUTORIAL, re.S) if "cash_ratio" in b)
    table = tomllib.loads(block)["calculation"]["cash_ratio"]
    assert table["entry"] == "cash_ratio:cash_ratio"
    assert (REPO / "calculations" / "pricing" / "BUILD.toml").read_text().count(
        "[calculation.portfolio_value]"
    ) == 1
    assert table["deps"] == ["//pricing:portfolio_value"]


def test_tutorial_uses_the_documented_commands():
    commands = re.findall(r"^\$ (btbuild \S+)", TUTORIAL, re.M)
    assert set(commands) <= {
        "btbuild build",
        "btbuild query",
        "btbuild explain",
        "btbuild status",
        "btbuild hash",
        "btbuild verify",
        "btbuild --help",
        "btbuild gc",
    }
    assert {"btbuild build", "btbuild explain", "btbuild verify"} <= set(commands)
