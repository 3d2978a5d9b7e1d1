"""The README's two commands are the contract for a fresh machine; .ci/run must run the test one."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Two commands for a fresh machine", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```\n(.+?)\n```", section)


def test_readme_has_the_two_commands():
    demo, tests = readme_commands()
    assert "btbuild build '//...'" in demo
    assert "pytest" in tests


def test_ci_runs_exactly_the_readme_test_command():
    _demo, tests = readme_commands()
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert tests in ci
