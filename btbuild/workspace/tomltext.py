"""Reading a BUILD.toml: a parsed file that knows on which line each table and key sits
(TOML parsers report positions only for invalid documents), and typed getters whose errors
name the file, the line, the table and the key."""

from __future__ import annotations

import difflib
import re
import sys
from collections.abc import Mapping
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Any

from btbuild.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


class TomlText:
    """A parsed TOML file that can say on which line a table or a key was written."""

    def __init__(self, path: Path, display: str):
        self.path = path
        self.display = display
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read: {exc.strerror}", path=display) from None
        try:
            self.text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError("not UTF-8 text", path=display) from None
        try:
            self.data: dict[str, Any] = tomllib.loads(self.text)
        except tomllib.TOMLDecodeError as exc:
            message = str(exc)
            match = re.search(r"\(at line (\d+), column \d+\)", message)
            line = int(match.group(1)) if match else None
            message = re.sub(r"\s*\(at line \d+, column \d+\)", "", message)
            raise ConfigError(f"invalid TOML: {message}", path=display, line=line) from None
        self.lines = self.text.splitlines()

    @cached_property
    def headers(self) -> dict[tuple[str, ...], int]:
        """Table header -> 1-based line, found in one pass over the text."""
        found: dict[tuple[str, ...], int] = {}
        for number, line in enumerate(self.lines, 1):
            match = _HEADER.match(line)
            if match:
                parts = tuple(part.strip().strip("\"'") for part in match.group(1).split("."))
                found.setdefault(parts, number)
        return found

    def line_of(self, table: str, key: str | None = None) -> int | None:
        """1-based line of ``[table]`` (dotted) or of ``key =`` inside it; None if not found."""
        start = self.headers.get(tuple(table.split(".")))
        if start is None or key is None:
            return start
        assignment = re.compile(r"^\s*" + _key_re(key) + r"\s*[=.]")
        for number in range(start + 1, len(self.lines) + 1):
            line = self.lines[number - 1]
            if line.lstrip().startswith("["):
                break
            if assignment.match(line):
                return number
        return start  # the key sits in an inline table: the header is the best place to point

    def error(self, message: str, table: str, key: str | None = None) -> ConfigError:
        return ConfigError(message, path=self.display, line=self.line_of(table, key))


_HEADER = re.compile(r"^\s*\[(?!\[)\s*([^\]]+?)\s*\]")


def _key_re(part: str) -> str:
    escaped = re.escape(part)
    return f"(?:{escaped}|\"{escaped}\"|'{escaped}')"


def suggest(word: str, options: Any) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def reject_unknown(
    doc: TomlText, table: str, values: Mapping[str, Any], allowed: tuple[str, ...]
) -> None:
    for key in values:
        if key not in allowed:
            raise doc.error(
                f"unknown key {key!r} in [{table}]{suggest(key, allowed)}; allowed: {', '.join(allowed)}",
                table,
                key,
            )


def typed(
    doc: TomlText,
    table: str,
    values: Mapping[str, Any],
    key: str,
    kind: type,
    *,
    required: bool = False,
    default: Any = None,
    label: str | None = None,
) -> Any:
    prefix = f"{label}: " if label else ""
    if key not in values:
        if required:
            raise doc.error(f"{prefix}missing required key {key!r} in [{table}]", table)
        return default
    value = values[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        names = {str: "a string", int: "a whole number", bool: "true or false"}
        raise doc.error(
            f"{prefix}{key} must be {names.get(kind, kind.__name__)}, got {value!r}", table, key
        )
    return value


def str_list(
    doc: TomlText, table: str, values: Mapping[str, Any], key: str, *, label: str | None = None
) -> list[str]:
    value = values.get(key, [])
    if not isinstance(value, list) or any(not isinstance(v, str) for v in value):
        prefix = f"{label}: " if label else ""
        raise doc.error(f"{prefix}{key} must be a list of strings, got {value!r}", table, key)
    return list(value)


def date_value(
    doc: TomlText, table: str, values: Mapping[str, Any], key: str, default: date
) -> date:
    value = values.get(key, default)
    if isinstance(value, date) and not hasattr(value, "hour"):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise doc.error(f'{key} must be a date like "2024-01-01", got {value!r}', table, key)


def display(root: Path, path: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)
