"""A pytest plugin for testing btbuild workspaces (registered through the ``pytest11`` entry point).

``make_workspace`` writes a throw-away workspace from a mapping of relative paths to text::

    def test_something(make_workspace):
        root = make_workspace({
            "BUILD.toml": '[workspace]\\nname = "t"\\n',
            "calculations/a/BUILD.toml": '[calculation.x]\\nentry = "x:X"\\n',
            "calculations/a/x.py": "class X:\\n    def process(self, ctx):\\n        return 1\\n",
        })
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest


def write_tree(root: Path, files: Mapping[str, str]) -> Path:
    """Write ``files`` (relative path -> text, dedented) under ``root`` and return ``root``."""
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


@pytest.fixture
def make_workspace(tmp_path: Path) -> Callable[[Mapping[str, str]], Path]:
    counter = iter(range(1_000_000))

    def make(files: Mapping[str, str]) -> Path:
        return write_tree(tmp_path / f"ws{next(counter)}", files)

    return make
