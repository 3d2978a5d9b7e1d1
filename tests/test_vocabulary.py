"""One vocabulary (btbuild/vocabulary.py): statuses and reasons are spelled once.

The stages compare and build statuses through the enums; a bare string literal that happens
to equal a member (``cell.status == "skippd"`` would not even fail) is how the copies drifted
before. The scan below finds them; BARE_LITERALS lists the modules that still hold some, and
only shrinks.
"""

from __future__ import annotations

import ast
import json
import pickle
from pathlib import Path

import pytest

from btbuild.storage.records import STATUSES, CellRecord
from btbuild.vocabulary import CellSummary, Reason, RecordStatus, Status, VerdictKind

PACKAGE = Path(__file__).resolve().parent.parent / "btbuild"
WORDS = {member.value for enum in (Status, Reason, RecordStatus, VerdictKind) for member in enum}
NAMES = {"status", "reason"}  # a variable or attribute holding a vocabulary word
BUILDERS = {"Decision", "CellState", "CellOutcome", "CellReport"}  # (name, day, status, reason)

# modules (relative to btbuild/) that still compare or build statuses from bare strings ->
# owner; remove an entry once converted (the test fails while a listed module is clean)
BARE_LITERALS: dict[str, str] = {}


def _is_word(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in WORDS


def _names_a_word(node: ast.AST) -> bool:
    name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", None)
    return name in NAMES


def bare_words(source: str) -> list[tuple[int, str]]:
    """(line, literal) of every vocabulary word written as a string where a status or reason
    is compared (``x.status == "ran"``, ``reason in ("new", ...)``), built
    (``Decision("skipped", ...)``, ``status="ran"``), named (``LEASED = "leased"``) or listed
    (``("forced", "damaged")``)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign) and _is_word(node.value):
            if any(isinstance(t, ast.Name) and t.id.isupper() for t in node.targets):
                found.append((node.value.lineno, node.value.value))
        elif (
            isinstance(node, (ast.Tuple, ast.List, ast.Set))
            and len(node.elts) > 1
            and all(_is_word(item) for item in node.elts)
        ):
            found.extend((item.lineno, item.value) for item in node.elts)
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(_names_a_word(side) for side in sides):
                for side in sides:
                    items = (
                        side.elts if isinstance(side, (ast.Tuple, ast.List, ast.Set)) else [side]
                    )
                    found.extend((item.lineno, item.value) for item in items if _is_word(item))
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            args = list(node.args)
            if name in BUILDERS:
                found.extend((arg.lineno, arg.value) for arg in args if _is_word(arg))
            found.extend(
                (kw.value.lineno, kw.value.value)
                for kw in node.keywords
                if kw.arg in NAMES and _is_word(kw.value)
            )
    return found


def test_statuses_and_reasons_are_not_bare_strings():
    offenders = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative == "vocabulary.py":  # where each word is spelled, once
            continue
        words = bare_words(path.read_text(encoding="utf-8"))
        if words and relative not in BARE_LITERALS:
            offenders[relative] = words
    assert not offenders, (
        f"use btbuild.vocabulary (Status, Reason, RecordStatus, VerdictKind): {offenders}"
    )


def test_the_bare_literal_list_only_shrinks():
    clean = [
        name
        for name in BARE_LITERALS
        if not bare_words((PACKAGE / name).read_text(encoding="utf-8"))
    ]
    assert not clean, f"converted: remove from BARE_LITERALS: {clean}"


@pytest.mark.parametrize(
    "source",
    [
        'if cell.status == "skipped": pass',
        'ok = reason in ("new", "retry")',
        'Decision("runnable", Reason.NEW)',
        'CellOutcome(name, day, "blocked", "leased")',
        'replace(outcome, status="ran")',
        'LEASED = "leased"',
        'RERUN = ("forced", "damaged")',
    ],
)
def test_the_scan_finds_bare_words(source):
    assert bare_words(source)


def test_the_scan_leaves_other_strings_alone():
    assert not bare_words(
        'version = "new"\nif mode == "new": pass\nprint("ran")\nVERSIONS = ("old", "new")'
    )


def test_members_are_the_strings_stored_everywhere():
    """Records, JSON and SQLite rows hold plain strings: members must equal, hash and print
    like them, and survive pickling to worker processes."""
    assert Status.RAN == "ran" and {"ran": 1}[Status.RAN] == 1
    assert f"{Reason.UP_TO_DATE:<12}|" == "up_to_date  |" and str(RecordStatus.EXPIRED) == "expired"
    assert json.dumps({Status.SKIPPED: Reason.COSMETIC}) == '{"skipped": "cosmetic"}'
    assert pickle.loads(pickle.dumps(Reason.NEW)) is Reason.NEW


def test_records_accept_exactly_the_record_statuses():
    assert set(STATUSES) == {member.value for member in RecordStatus}
    for status in RecordStatus:
        assert CellRecord.from_dict({"target": "a", "date": "2024-01-01", "status": status.value})
    for word in ("ran", "skipped", "Committed", ""):
        with pytest.raises(ValueError, match="unknown status"):
            CellRecord.from_dict({"target": "a", "date": "2024-01-01", "status": word})


def test_a_summary_is_a_tuple_with_names():
    summary = CellSummary("committed", "k", "r", "g", "risk")
    assert summary == ("committed", "k", "r", "g", "risk") and summary.has_result
    assert summary.category == "risk" and not summary._replace(generation=None).has_result
