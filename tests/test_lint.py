"""The code stays clean: ruff check over the whole repository, ruff format over the code, mypy --strict over the
package (configured in pyproject.toml), and every `# type: ignore` in the package says why on its line."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[test]')")
    return found


def test_ruff_is_clean():
    proc = subprocess.run([tool("ruff"), "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_format_is_clean():
    paths = ["btbuild", "bench", "tests", "plugins", "calculations", "layers"]
    proc = subprocess.run(
        [tool("ruff"), "format", "--check", *paths], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_strict_is_clean():
    proc = subprocess.run(
        [tool("mypy"), "--strict", "btbuild"], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


IGNORE = re.compile(r"#\s*type:\s*ignore(\[[^\]]*\])?(?P<rest>.*)$")


def unexplained_ignores(text: str) -> list[int]:
    """Lines whose ``# type: ignore[...]`` is not followed by ``  # why``."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        match = IGNORE.search(line)
        if match and not re.match(r"\s+#\s*\S", match.group("rest")):
            found.append(number)
    return found


def test_every_type_ignore_says_why():
    bare = {
        str(path.relative_to(ROOT)): lines
        for path in sorted((ROOT / "btbuild").rglob("*.py"))
        if (lines := unexplained_ignores(path.read_text(encoding="utf-8")))
    }
    assert not bare, f"add '  # why' after each of these type: ignore comments: {bare}"


def test_the_ignore_check_can_fail():
    assert unexplained_ignores("x = f()  # type: ignore[arg-type]\ny = g()  # type: ignore") == [
        1,
        2,
    ]
    assert not unexplained_ignores("x = f()  # type: ignore[arg-type]  # numbers only here")
