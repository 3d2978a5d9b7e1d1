from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from btbuild.errors import LabelError
from btbuild.workspace.labels import Label, Pattern, parse_label, parse_pattern

names = st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True)
segments = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_\-]{0,8}", fullmatch=True)
packages = st.lists(segments, min_size=0, max_size=4).map("/".join)


@given(packages, names)
def test_label_round_trip(package, name):
    label = Label(package, name)
    assert parse_label(str(label)) == label
    assert str(parse_pattern(str(label))) == str(label)


@given(packages, names)
def test_relative_label_resolves_in_package(package, name):
    assert parse_label(f":{name}", current_package=package) == Label(package, name)


@given(packages.filter(bool))
def test_pattern_round_trip(package):
    for text in (f"//{package}:*", f"//{package}/..."):
        assert str(parse_pattern(text)) == text
    assert str(parse_pattern(f"//{package}:all")) == f"//{package}:*"


def test_patterns_match():
    risk = Label("risk", "a")
    credit = Label("risk/credit", "b")
    riskier = Label("riskier", "c")
    assert parse_pattern("//risk:*").matches(risk) and not parse_pattern("//risk:*").matches(credit)
    assert parse_pattern("//risk/...").matches(credit) and not parse_pattern("//risk/...").matches(
        riskier
    )
    assert all(parse_pattern("//...").matches(x) for x in (risk, credit, riskier))
    assert parse_pattern("//...") == Pattern("recursive", "")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("//../x:a", "'..' segment"),
        ("//risk/./x:a", "'.' or '..' segment"),
        ("//risk//x:a", "empty"),
        ("/abs/path:a", "absolute paths are not labels"),
        ("risk:a", "expected //package:name"),
        ("//risk", "missing ':name'"),
        ("//risk:A", "must match [a-z][a-z0-9_]*"),
        ("//ri sk:a", "may only use letters"),
        (":a", "needs a package"),
        ("", "invalid pattern"),
    ],
)
def test_bad_labels(text, message):
    with pytest.raises(LabelError) as info:
        parse_pattern(text)
    assert message in str(info.value)


@given(packages, names)
def test_relative_patterns_resolve_in_package(package, name):
    prefix = f"//{package}"
    assert str(parse_pattern(f":{name}", package)) == f"{prefix}:{name}"
    assert str(parse_pattern(":all", package)) == f"{prefix}:*"
    assert str(parse_pattern(":*", package)) == f"{prefix}:*"
    assert str(parse_pattern("...", package)) == (f"{prefix}/..." if package else "//...")
    assert str(parse_pattern(f"sub:{name}", package)) == (
        f"//{package}/sub:{name}" if package else f"//sub:{name}"
    )


def test_relative_patterns_need_a_package_and_no_path_tricks():
    with pytest.raises(LabelError, match="needs a package"):
        parse_pattern(":all")
    with pytest.raises(LabelError, match="'..' segment"):
        parse_pattern("../other:x", "risk")
    with pytest.raises(LabelError, match="absolute paths"):
        parse_pattern("/x:y", "risk")
    with pytest.raises(LabelError, match="expected //package:name"):
        parse_pattern("risk:a")  # outside a package, only ':name' reads as relative
