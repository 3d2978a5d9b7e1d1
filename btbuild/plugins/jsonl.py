"""A file source: one JSON Lines file (optionally gzip) per source and date.

Settings (``[plugin.jsonl]`` of the root BUILD.toml)::

    [plugin.jsonl]
    dir = "data"                 # workspace-relative (or absolute) folder, default "data"

    [plugin.jsonl.sources]       # which sources exist, and their scope
    prices = "date"
    portfolio = "user"

    [plugin.jsonl.schemas]       # optional: a JSON Schema file per source (workspace-relative)
    portfolio = "schemas/portfolio.json"

Source ``S`` on date ``D`` is ``<dir>/S/D.jsonl`` or ``<dir>/S/D.jsonl.gz`` (having both is an
error); the date is available when the file exists. Line shapes:

* date scope: ``{"key": "AAPX", "value": {...}}`` per line; ``load()`` returns the dict of
  every key to its value (a key given twice is an error);
* user scope: ``{"user": "u000001", "record": {...}}`` per line, user ids strictly ascending;
  ``users()`` streams the file and never holds it whole.

The fingerprint is the xxh3-128 digest of the file's bytes, cached by (path, mtime, ctime,
size, inode).
Every data error is one line naming ``file:line``.

Typed data (:mod:`btbuild.plugins.jsonschemas`): a source's schema describes the day's value
(date scope) or one user's record (user scope). A declared schema validates the data as it is
read (a record breaking it is an error naming ``file:line``) and is what simulations
fabricate from; without one, the schema is inferred from the source's oldest files, and
:attr:`JsonlSource.strategy_note` says so.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import zlib
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import xxhash

from btbuild.errors import WorkspaceError
from btbuild.plugins import jsonschemas
from btbuild.plugins.config import PluginConfig
from btbuild.plugins.hookspecs import hookimpl
from btbuild.plugins.jsonschemas import first_error, schema_key
from btbuild.plugins.sources import SCOPES, SOURCE_NAME, RootSource, in_shard

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

PLUGIN = "jsonl"
SETTINGS = {
    "dir": "folder holding <source>/<date>.jsonl[.gz]",
    "sources": "table source name -> scope",
    "schemas": "table source name -> JSON Schema file (workspace-relative)",
}
STRATEGY_VERSION = "jsonl-2"
_CHUNK = 1 << 20


class JsonlSource(RootSource):
    def __init__(
        self,
        name: str,
        scope: str,
        folder: Path,
        root: Path | None = None,
        schema_file: Path | None = None,
    ):
        self.name = name
        self.scope = scope  # type: ignore[assignment]  # a str checked against SCOPES when the plugin registers
        self.folder = folder
        self.root = root
        self.schema_file = schema_file
        # path -> (its stat stamp when hashed, digest)
        self._digests: dict[Path, tuple[tuple[int, int, int, int], str]] = {}
        self._schema: tuple[dict[str, Any] | None, str] | None = None
        self._checker: Any = None
        self._valid: set[tuple[Path, int, int]] = set()  # files already validated

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
        # a file replaced (new inode) or rewritten (new mtime/ctime) is hashed again
        stamp = (stat.st_mtime_ns, stat.st_ctime_ns, stat.st_size, stat.st_ino)
        cached = self._digests.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        digest = xxhash.xxh3_128()
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
        self._digests[path] = (stamp, digest.hexdigest())
        return self._digests[path][1]

    def load(self, day: date) -> Any:
        if self.scope != "date":
            return super().load(day)
        return self._values(self._require(day), None)

    def load_read(self, day: date) -> tuple[str, Any]:
        """The day's value and the xxh3-128 digest of exactly the bytes it was parsed from
        (the file read once, hashed as it is read)."""
        if self.scope != "date":
            return super().load_read(day)
        read: list[str] = []
        values = self._values(self._require(day), read)
        return read[0], values

    def _values(self, path: Path, read: list[str] | None) -> dict[str, Any]:
        values: dict[str, Any] = {}
        checker = self._validator(path)
        for line_no, item in self._lines(path, read):
            key = item.get("key")
            if set(item) != {"key", "value"} or not isinstance(key, str):
                raise self._error(path, line_no, 'expected {"key": "<string>", "value": <JSON>}')
            if key in values:
                raise self._error(path, line_no, f"key {key!r} given twice")
            values[key] = item["value"]
        if checker is not None:
            problem = first_error(checker, values)
            if problem is not None:
                raise self._error(path, 1, f"the day's value does not match the schema {problem}")
            self._valid.add(self._stamp(path))
        return values

    def users(self, day: date) -> Iterator[tuple[str, Any]]:
        if self.scope != "user":
            yield from super().users(day)
            return
        yield from self._users(self._require(day), None)

    def users_read(
        self, day: date, shard: int = 0, shards: int = 1
    ) -> tuple[Iterator[tuple[str, Any]], Callable[[], str | None]]:
        """:meth:`users`, and once it is exhausted the xxh3-128 digest of exactly the bytes its
        records were parsed from: a file rewritten while it was streamed (and perhaps put
        back before the commit) never passes for the data the cell was planned with."""
        if self.scope != "user":
            return super().users_read(day, shard, shards)
        read: list[str] = []
        users = self._users(self._require(day), read)
        if shards > 1:  # every line is read (and hashed) either way
            users = in_shard(users, shard, shards)
        return users, lambda: read[0] if read else None

    def _users(self, path: Path, read: list[str] | None) -> Iterator[tuple[str, Any]]:
        previous: str | None = None
        checker = self._validator(path)
        for line_no, item in self._lines(path, read):
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
            if checker is not None:
                problem = first_error(checker, item["record"])
                if problem is not None:
                    raise self._error(
                        path, line_no, f"record of {user!r} does not match the schema {problem}"
                    )
            yield user, item["record"]
        if checker is not None:
            self._valid.add(self._stamp(path))

    # -- typed data ---------------------------------------------------------------------------

    def schema(self) -> dict[str, Any] | None:
        """The declared schema, else the one inferred from the oldest files (None: no data)."""
        if self._schema is None:
            self._schema = self._read_schema() if self.schema_file else self._infer_schema()
        return self._schema[0]

    @property
    def strategy_note(self) -> str:
        """How this source's fabricated data is typed, in one line."""
        self.schema()
        assert self._schema is not None
        return self._schema[1]

    def strategy_key(self) -> str:
        schema = self.schema()
        return (
            f"{STRATEGY_VERSION}:{self.scope}:{'untyped' if schema is None else schema_key(schema)}"
        )

    def strategy(self) -> SearchStrategy[Any]:
        from btbuild.plugins.strategies import json_objects, json_values

        schema = self.schema()
        if schema is not None:
            typed: SearchStrategy[Any] = jsonschemas.strategy(schema)
            return typed
        return json_objects() if self.scope == "date" else json_values()

    def _read_schema(self) -> tuple[dict[str, Any] | None, str]:
        assert self.schema_file is not None
        shown = self._show(self.schema_file)
        try:
            schema = json.loads(self.schema_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise WorkspaceError(
                f"cannot read the JSON Schema of source {self.name!r}: {exc}", path=shown
            ) from None
        if not isinstance(schema, dict):
            raise WorkspaceError(
                f"the JSON Schema of source {self.name!r} must be a JSON object", path=shown
            )
        try:
            jsonschemas.validator(schema)
        except Exception as exc:
            message = getattr(exc, "message", str(exc)).splitlines()[0]
            raise WorkspaceError(
                f"invalid JSON Schema for source {self.name!r}: {message}", path=shown
            ) from None
        return schema, f"source {self.name!r}: typed by its declared schema {shown}"

    def _infer_schema(self) -> tuple[dict[str, Any] | None, str]:
        days = self._days()[: jsonschemas.INFER_FILES]
        values: list[Any] = []
        for day in days:
            if self.scope == "date":
                values.append(self.load(day))
            else:
                for index, (_user, record) in enumerate(self.users(day)):
                    if index >= jsonschemas.INFER_LINES:
                        break
                    values.append(record)
        if not values:
            return None, (
                f"source {self.name!r}: no schema declared and no data to infer one from: "
                "fabricated values are untyped JSON (declare [plugin.jsonl.schemas])"
            )
        shown = ", ".join(day.isoformat() for day in days)
        return jsonschemas.infer(values), (
            f"source {self.name!r}: no schema declared; inferred from {len(days)} file(s) "
            f"({shown}): types, ranges, key sets, list lengths"
        )

    def _days(self) -> list[date]:
        found: set[date] = set()
        if self.folder.is_dir():
            for path in self.folder.iterdir():
                stem = path.name.removesuffix(".gz").removesuffix(".jsonl")
                try:
                    found.add(date.fromisoformat(stem))
                except ValueError:
                    continue
        return sorted(found)

    def _validator(self, path: Path) -> Any:
        if self.schema_file is None or self._stamp(path) in self._valid:
            return None
        if self._checker is None:
            schema = self.schema()
            assert schema is not None
            self._checker = jsonschemas.validator(schema)
        return self._checker

    @staticmethod
    def _stamp(path: Path) -> tuple[Path, int, int]:
        stat = path.stat()
        return path, stat.st_mtime_ns, stat.st_size

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

    def _lines(self, path: Path, read: list[str] | None) -> Iterator[tuple[int, dict[str, Any]]]:
        """The file's JSON objects with their line numbers; ``read``: once the last line is
        read, gets the digest of every byte of the file as it was read."""
        hashed = None
        try:
            hashed = None if read is None else _Hashed(path)
            with _open_text(path, hashed) as handle:
                yield from self._parsed(path, handle)
                if hashed is not None and read is not None:
                    read.append(hashed.rest())
        except (OSError, EOFError, UnicodeDecodeError, zlib.error) as exc:
            raise WorkspaceError(f"cannot read root data: {exc}", path=self._show(path)) from None
        finally:
            if hashed is not None:  # gzip leaves the file object it reads from open
                hashed.close()

    def _parsed(self, path: Path, handle: IO[str]) -> Iterator[tuple[int, dict[str, Any]]]:
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


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


class _Hashed(io.RawIOBase):
    """A file's bytes as read, each hashed (xxh3-128) on the way: the fingerprint of exactly
    the data parsed, even if the file is rewritten while it is read."""

    def __init__(self, path: Path):
        self._file = path.open("rb", buffering=0)
        self._digest = xxhash.xxh3_128()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        count = self._file.readinto(buffer)
        if count:
            self._digest.update(memoryview(buffer)[:count])
        return count

    def rest(self) -> str:
        """The digest of the whole file as read (what is left of it read now)."""
        while chunk := self._file.read(_CHUNK):
            self._digest.update(chunk)
        return self._digest.hexdigest()

    def close(self) -> None:
        self._file.close()
        super().close()


def _open_text(path: Path, hashed: _Hashed | None = None) -> IO[str]:
    binary: Any = path if hashed is None else io.BufferedReader(hashed, _CHUNK)
    if path.name.endswith(".gz"):
        return gzip.open(binary, "rt", encoding="utf-8")
    if hashed is None:
        return path.open(encoding="utf-8")
    return io.TextIOWrapper(binary, encoding="utf-8")


def jsonl_sources(config: PluginConfig) -> list[RootSource]:
    table = config.check_keys(PLUGIN, SETTINGS)
    folder = table.get("dir", "data")
    if not isinstance(folder, str) or not folder:
        raise config.error(PLUGIN, f"dir = {folder!r} is invalid, expected a folder path string")
    base = Path(os.path.expanduser(folder))
    base = base if base.is_absolute() else config.root / base
    declared: Any = table.get("sources", {})
    if not hasattr(declared, "items"):
        raise config.error(
            PLUGIN, f'sources = {declared!r} must be a table like {{ prices = "date" }}'
        )
    schemas: Any = table.get("schemas", {})
    if not hasattr(schemas, "items"):
        raise config.error(
            PLUGIN,
            f'schemas = {schemas!r} must be a table like {{ prices = "schemas/prices.json" }}',
        )
    for name, file in schemas.items():
        if name not in declared:
            raise config.error(
                PLUGIN, f"schemas.{name}: no source {name!r} in [plugin.jsonl.sources]"
            )
        if not isinstance(file, str) or not file:
            raise config.error(
                PLUGIN, f"schemas.{name} = {file!r} is invalid, expected a file path"
            )
    sources: list[RootSource] = []
    for name, scope in sorted(declared.items()):
        if not SOURCE_NAME.match(name):
            raise config.error(PLUGIN, f"source name {name!r} must match [a-z][a-z0-9_]*")
        if scope not in SCOPES:
            raise config.error(
                PLUGIN, f'sources.{name} = {scope!r} is invalid, expected "date" or "user"'
            )
        schema_file = None
        if name in schemas:
            schema_file = Path(os.path.expanduser(schemas[name]))
            schema_file = schema_file if schema_file.is_absolute() else config.root / schema_file
            if not schema_file.is_file():
                raise config.error(PLUGIN, f"schemas.{name} = {schemas[name]!r}: no such file")
        sources.append(JsonlSource(name, scope, base / name, config.root, schema_file))
    return sources


@hookimpl
def btbuild_configure(config: PluginConfig) -> None:
    jsonl_sources(config)


@hookimpl
def btbuild_root_sources(config: PluginConfig) -> list[RootSource]:
    return jsonl_sources(config)
