from __future__ import annotations

import inspect
from pathlib import Path

from btbuild.plugins import hookspecs
from btbuild.plugins.builtin_checks import OPTIONS

DOC = (Path(__file__).resolve().parents[2] / "docs/plugins.md").read_text(encoding="utf-8")


def test_every_hook_is_documented_with_its_signature():
    hooks = [name for name in vars(hookspecs) if name.startswith("btbuild_")]
    assert len(hooks) >= 5
    for name in hooks:
        spec = getattr(hookspecs, name)
        params = ", ".join(inspect.signature(spec).parameters)
        assert f"`{name}({params})`" in DOC, name
        doc = inspect.getdoc(spec) or ""
        assert "Called" in doc and ":param" in doc or ":return" in doc, name


def test_every_builtin_check_option_is_documented():
    for key in OPTIONS:
        assert f"| `{key}` |" in DOC
