"""A small JSON path for ``btbuild show --path``: ``$.risk.bands[0]``, ``risk.score``,
``$["key with dots"]``, ``[-1]``.

Only member and index steps: the reader wants one value out of a stored result, not a query
language. A path that does not exist in a value selects nothing (:data:`MISSING`), so a whole
per_user cell can be projected user by user without failing on users that lack the key.
"""

from __future__ import annotations

import json
import re
from typing import Any

from btbuild.errors import UsageError

MISSING: Any = object()
"""What :func:`select` returns when the path does not exist in the value."""

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
_INDEX = re.compile(r"\[\s*(-?\d+)\s*\]")
_QUOTED = re.compile(r"""\[\s*("(?:[^"\\]|\\.)*"|'[^']*')\s*\]""")

Step = str | int


def parse_path(text: str) -> tuple[Step, ...]:
    """The steps of ``text``; :class:`UsageError` naming the column of the first bad step."""
    steps: list[Step] = []
    pos = 1 if text.startswith("$") else 0
    if pos == 0 and text and text[0] not in ".[":
        text = "." + text  # "risk.score" reads as "$.risk.score"
        offset = -1
    else:
        offset = 0
    while pos < len(text):
        if text[pos] == ".":
            match = _NAME.match(text, pos + 1)
            if match is None:
                raise _bad(text, pos + 1 + offset, "a member name after '.'")
            steps.append(match.group(0))
            pos = match.end()
            continue
        match = _INDEX.match(text, pos)
        if match is not None:
            steps.append(int(match.group(1)))
            pos = match.end()
            continue
        match = _QUOTED.match(text, pos)
        if match is not None:
            quoted = match.group(1)
            steps.append(json.loads(quoted) if quoted[0] == '"' else quoted[1:-1])
            pos = match.end()
            continue
        raise _bad(text, pos + offset, "'.name', '[index]' or '[\"key\"]'")
    return tuple(steps)


def _bad(text: str, column: int, expected: str) -> UsageError:
    shown = text[1:] if text.startswith(".") and not text.startswith("..") else text
    return UsageError(f"--path {shown!r}: expected {expected} at column {max(column, 0) + 1}")


def select(value: Any, steps: tuple[Step, ...]) -> Any:
    """The part of ``value`` the steps lead to, or :data:`MISSING`."""
    for step in steps:
        if isinstance(step, int):
            if not isinstance(value, list) or not -len(value) <= step < len(value):
                return MISSING
            value = value[step]
        else:
            if not isinstance(value, dict) or step not in value:
                return MISSING
            value = value[step]
    return value


def format_path(steps: tuple[Step, ...]) -> str:
    """``steps`` written back as a path starting with ``$``."""
    out = ["$"]
    for step in steps:
        if isinstance(step, int):
            out.append(f"[{step}]")
        elif _NAME.fullmatch(step):
            out.append(f".{step}")
        else:
            out.append(f"[{json.dumps(step)}]")
    return "".join(out)
