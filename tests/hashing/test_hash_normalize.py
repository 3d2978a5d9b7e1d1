from __future__ import annotations

from pathlib import Path

import pytest

from btbuild.errors import WorkspaceError
from btbuild.hashing import code_hash, normalize_source

CASES = Path(__file__).parent / "cases"


def _pairs(kind: str) -> list[Path]:
    return sorted(path for path in (CASES / kind).iterdir() if path.is_dir())


def _hash_file(path: Path) -> str:
    return code_hash(path.read_text(encoding="utf-8"), path=str(path))


@pytest.mark.parametrize("case", _pairs("same"), ids=lambda p: p.name)
def test_same_case_keeps_hash(case: Path) -> None:
    a, b = case / "a.py", case / "b.py"
    assert a.read_text() != b.read_text()
    assert normalize_source(a.read_text()) == normalize_source(b.read_text())
    assert _hash_file(a) == _hash_file(b)


@pytest.mark.parametrize("case", _pairs("different"), ids=lambda p: p.name)
def test_different_case_changes_hash(case: Path) -> None:
    assert _hash_file(case / "a.py") != _hash_file(case / "b.py")


def test_case_folders_are_not_empty() -> None:
    assert len(_pairs("same")) >= 10
    assert len(_pairs("different")) >= 10


def test_hash_is_32_hex_digits() -> None:
    digest = code_hash("x = 1\n")
    assert len(digest) == 32
    int(digest, 16)


def test_syntax_error_names_path_and_line() -> None:
    with pytest.raises(WorkspaceError) as info:
        code_hash("def f(:\n    pass\n", path="calculations/risk/bad.py")
    assert info.value.path == "calculations/risk/bad.py"
    assert info.value.line == 1
    assert str(info.value).startswith("calculations/risk/bad.py:1: ")
    assert "\n" not in str(info.value)


def test_syntax_error_on_later_line() -> None:
    with pytest.raises(WorkspaceError) as info:
        code_hash("x = 1\ny = 2\nz = (\n", path="c.py")
    assert info.value.line is not None and info.value.line >= 3


def test_parameters_keep_names_but_locals_do_not() -> None:
    canonical = normalize_source(
        "def f(alpha, *rest, beta=1, **extra):\n    gamma = alpha\n    return gamma\n"
    )
    assert "def f(alpha, *rest, beta=1, **extra)" in canonical
    assert "gamma" not in canonical


def test_globals_attributes_and_imports_keep_names() -> None:
    canonical = normalize_source(
        "import numpy as np\nRATE = 1\ndef f(x):\n    import json\n    y = np.mean(x) * RATE\n    return json.dumps(y.real)\n"
    )
    for name in ("np", "RATE", "json", "mean", "real", "dumps"):
        assert name in canonical
    assert " y " not in canonical


def test_global_declaration_is_not_renamed() -> None:
    a = "COUNT = 0\ndef f():\n    global COUNT\n    COUNT = COUNT + 1\n"
    b = "COUNT = 0\ndef f():\n    global COUNT\n    COUNT = COUNT + 2\n"
    assert "global COUNT" in normalize_source(a)
    assert code_hash(a) != code_hash(b)


def test_nonlocal_binding_keeps_its_name() -> None:
    source = "def outer():\n    n = 0\n    def bump():\n        nonlocal n\n        n += 1\n    return bump\n"
    canonical = normalize_source(source)
    assert "nonlocal n" in canonical and "n = 0" in canonical


def test_walrus_in_comprehension_binds_outer_name() -> None:
    source = "def f(xs):\n    ys = [(last := x) for x in xs]\n    return last, ys\n"
    canonical = normalize_source(source)
    assert "last" in canonical  # the walrus target lives in f's scope: kept
    renamed = "def f(xs):\n    ys = [(last := item) for item in xs]\n    return last, ys\n"
    assert normalize_source(renamed) == canonical


def test_class_body_names_are_attributes() -> None:
    a = "class C:\n    limit = 3\n    def process(self, ctx):\n        return self.limit\n"
    b = "class C:\n    cap = 3\n    def process(self, ctx):\n        return self.cap\n"
    assert code_hash(a) != code_hash(b)


def test_docstring_only_body_equals_pass() -> None:
    assert code_hash('def f():\n    """doc"""\n') == code_hash("def f():\n    pass\n")


def test_non_docstring_strings_are_kept() -> None:
    assert code_hash('def f():\n    x = 1\n    "note"\n    return x\n') != code_hash(
        "def f():\n    x = 1\n    return x\n"
    )


def test_fstring_expressions_are_renamed_consistently() -> None:
    a = 'def f(x):\n    total = x + 1\n    return f"{total:.2f}"\n'
    b = 'def f(x):\n    amount = x + 1\n    return f"{amount:.2f}"\n'
    assert code_hash(a) == code_hash(b)


def test_implicit_concatenation_and_unicode_prefix_are_cosmetic() -> None:
    assert code_hash('x = "ab" "cd"\n') == code_hash("x = 'abcd'\n")
    assert code_hash("x = u'a'\n") == code_hash("x = 'a'\n")
    assert code_hash("x = 0x10\n") == code_hash("x = 16\n")


def test_a_module_reading_frame_locals_keeps_its_local_names() -> None:
    """Red team: ``sorted(sys._getframe().f_locals)`` sees local names, so renaming a local
    changes the output; the rename was normalized away (no re-run, a stale result)."""
    frames = (
        "import sys\n\n\ndef f(ctx):\n    cash = 1\n    return sorted(sys._getframe().f_locals)\n"
    )
    plain = "def f(ctx):\n    cash = 1\n    return cash\n"
    assert normalize_source(frames) != normalize_source(frames.replace("cash", "money"))
    assert normalize_source(plain) == normalize_source(plain.replace("cash", "money"))
