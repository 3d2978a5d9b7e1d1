"""A file source: one JSON Lines file (optionally gzip) per source and date.

Settings (``[plugin.jsonl]`` of the root BUILD.toml)::

    [plugin.jsonl]
    dir = "data"                 # workspace-relative (or absolute) folder, default "data"

    [plugin.jsonl.sources]       # which sources exist, and their scope
    prices = "date"
    portfolio = "user"

Source ``S`` on date ``D`` is ``<dir>/S/D.jsonl`` or ``<dir>/S/D.jsonl.gz`` (having both is an
error); the date is available when the file exists. Line shapes:

* date scope: ``{"key": "AAPX", "value": {...}}`` per line; ``load()`` returns the dict of
  every key to its value (a key given twice is an error);
* user scope: ``{"user": "u000001", "record": {...}}`` per line, user ids strictly ascending;
  ``users()`` streams the file and never holds it whole.

The fingerprint is the xxh3-128 digest of the file's bytes, cached by (path, mtime, size).
Every data error is one line naming ``file:line``.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import xxhash

from btbuild.errors import WorkspaceError
from btbuild.plugins.config import PluginConfig
from btbuild.plugins.hookspecs import hookimpl
from btbuild.plugins.sources import SCOPES, SOURCE_NAME, RootSource

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

PLUGIN = "jsonl"
SETTINGS = {
    "dir": "folder holding <source>/<date>.jsonl[.gz]",
    "sources": "table source name -> scope",
}
_CHUNK = 1 << 20


class JsonlSource(RootSource):
    def __init__(self, name: str, scope: str, folder: Path, root: Path | None = None):
        self.name = name
        self.scope = scope  # type: ignore[assignment]
        self.folder = folder
        self.root = root
        self._digests: dict[Path, tuple[int, int, str]] = {}

    def path(self, day: date) -> Path | None:
        """The file holding ``day``'s data, or None when there is none."""
        stem = self.folder / day.isoformat()
        plain, packed = (
            stem.with_name(stem.name + ".jsonl"),
            stem.with_name(stem.name + ".jsonl.gz"),
        )
        has_plain, has_packed = plain.is_file(), packed.is_file()
        if has_plain and has_packed:
            raise WorkspaceError(
                f"root source {self.name!r} has both {plain.name} and {packed.name} for {day.isoformat()}; keep one",
                path=self._show(self.folder),
            )
        return plain if has_plain else packed if has_packed else None

    def available(self, day: date) -> bool:
        return self.path(day) is not None

    def fingerprint(self, day: date) -> str:
        path = self._require(day)
        stat = path.stat()
        cached = self._digests.get(path)
        if cached is not None and cached[:2] == (stat.st_mtime_ns, stat.st_size):
            return cached[2]
        digest = xxhash.xxh3_128()
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
        self._digests[path] = (stat.st_mtime_ns, stat.st_size, digest.hexdigest())
        return self._digests[path][2]

    def load(self, day: date) -> Any:
        if self.scope != "date":
            return super().load(day)
        path = self._require(day)
        values: dict[str, Any] = {}
        for line_no, item in self._lines(path):
            key = item.get("key")
            if set(item) != {"key", "value"} or not isinstance(key, str):
                raise self._error(path, line_no, 'expected {"key": "<string>", "value": <JSON>}')
            if key in values:
                raise self._error(path, line_no, f"key {key!r} given twice")
            values[key] = item["value"]
        return values

    def users(self, day: date) -> Iterator[tuple[str, Any]]:
        if self.scope != "user":
            yield from super().users(day)
            return
        path = self._require(day)
        previous: str | None = None
        for line_no, item in self._lines(path):
            user = item.get("user")
            if set(item) != {"user", "record"} or not isinstance(user, str):
                raise self._error(
                    path, line_no, 'expected {"user": "<user id string>", "record": <JSON>}'
                )
            if previous is not None and user <= previous:
                raise self._error(
                    path,
                    line_no,
                    f"user {user!r} comes after {previous!r}; lines must be sorted by user id, each user once",
                )
            previous = user
            yield user, item["record"]

    def strategy(self) -> SearchStrategy[Any]:
        from btbuild.plugins.strategies import json_objects, json_values

        return json_objects() if self.scope == "date" else json_values()

    # -- helpers ------------------------------------------------------------------------------

    def _require(self, day: date) -> Path:
        path = self.path(day)
        if path is None:
            raise WorkspaceError(
                f"root source {self.name!r} has no data for {day.isoformat()} (no {day.isoformat()}.jsonl or .jsonl.gz)",
                path=self._show(self.folder),
            )
        return path

    def _show(self, path: Path) -> str:
        if self.root is not None:
            try:
                return path.relative_to(self.root).as_posix()
            except ValueError:
                pass
        return str(path)

    def _error(self, path: Path, line_no: int, message: str) -> WorkspaceError:
        return WorkspaceError(message, path=self._show(path), line=line_no)

    def _lines(self, path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
        try:
            with _open_text(path) as handle:
                for line_no, line in enumerate(handle, 1):
                    if not line.strip():
                        continue
                    try:
                        item = json.loads(line, parse_constant=_refuse_constant)
                    except ValueError as exc:
                        raise self._error(
                            path,
                            line_no,
                            f"not valid JSON: {getattr(exc, 'msg', exc)}; one JSON object per line",
                        ) from None
                    if not isinstance(item, dict):
                        raise self._error(
                            path, line_no, f"expected a JSON object, got {type(item).__name__}"
                        )
                    yield line_no, item
        except (OSError, EOFError, UnicodeDecodeError) as exc:
            raise WorkspaceError(f"cannot read root data: {exc}", path=self._show(path)) from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _open_text(path: Path) -> IO[str]:
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def jsonl_sources(config: PluginConfig) -> list[RootSource]:
    table = config.check_keys(PLUGIN, SETTINGS)
    folder = table.get("dir", "data")
    if not isinstance(folder, str) or not folder:
        raise config.error(PLUGIN, f"dir = {folder!r} is invalid, expected a folder path string")
    base = Path(os.path.expanduser(folder))
    base = base if base.is_absolute() else config.root / base
    declared = table.get("sources", {})
    if not hasattr(declared, "items"):
        raise config.error(
            PLUGIN, f'sources = {declared!r} must be a table like {{ prices = "date" }}'
        )
    sources: list[RootSource] = []
    for name, scope in sorted(declared.items()):
        if not SOURCE_NAME.match(name):
            raise config.error(PLUGIN, f"source name {name!r} must match [a-z][a-z0-9_]*")
        if scope not in SCOPES:
            raise config.error(
                PLUGIN, f'sources.{name} = {scope!r} is invalid, expected "date" or "user"'
            )
        sources.append(JsonlSource(name, scope, base / name, config.root))
    return sources


@hookimpl
def btbuild_configure(config: PluginConfig) -> None:
    jsonl_sources(config)


@hookimpl
def btbuild_root_sources(config: PluginConfig) -> list[RootSource]:
    return jsonl_sources(config)
