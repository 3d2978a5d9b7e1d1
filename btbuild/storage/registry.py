"""Storage backends as plugins: what the ``btbuild_storage_backends`` hook returns.

A backend is registered as a :class:`BackendSpec`: its ``[storage] backend`` name, the keys
its table may hold, and ``open``, which receives its own ``[storage]`` table
(:class:`StorageTable`), validates it (a one-line :class:`ConfigError` naming the file, line
and key; exit 2) and returns the opened :class:`~btbuild.storage.base.Backend`. The built-in
memory, SQLite and Firestore backends are registered the same way (btbuild/storage/plugin.py),
so adding one is one module plus its registration::

    from btbuild.storage.registry import BackendSpec, StorageTable

    def btbuild_storage_backends():
        return [BackendSpec("jsonfile", ("path",), lambda table: JsonBackend(table.path("path")))]
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from btbuild.errors import ConfigError

if TYPE_CHECKING:
    from btbuild.storage.base import Backend

T = TypeVar("T")


@dataclass(frozen=True)
class StorageTable:
    """A backend's ``[storage]`` table (every key but ``backend``) and where it came from."""

    backend: str
    values: Mapping[str, Any]
    build_file: Path  # as shown in messages (relative to the workspace when inside it)
    root: Path  # the workspace folder: relative paths are relative to it
    workspace: str  # the workspace name (a default for names the backend derives)
    lines: Mapping[str, int] = field(default_factory=dict)  # key -> line in build_file

    def error(self, key: str | None, message: str) -> ConfigError:
        """A one-line error naming the file, the line of ``key`` and the key."""
        where = f"[storage] {key}" if key else "[storage]"
        line = self.lines.get(key or "backend") or self.lines.get("backend")
        return ConfigError(f"{where}: {message}", path=self.build_file, line=line)

    def check_keys(self, allowed: tuple[str, ...]) -> None:
        for key in self.values:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                known = ", ".join(("backend", *allowed))
                raise self.error(
                    key,
                    f"unknown key for backend {self.backend!r}{hint}; allowed: {known}",
                )

    def get(self, key: str, kind: type[T], default: T) -> T:
        """The value of ``key`` (``default`` when absent), refused unless of type ``kind``."""
        value = self.values.get(key, default)
        if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
            raise self.error(key, f"must be a {kind.__name__}, got {value!r}")
        return value

    def optional(self, key: str, kind: type[T]) -> T | None:
        if key not in self.values:
            return None
        value: T = self.get(key, kind, self.values[key])
        return value

    def path(self, key: str, default: str) -> Path:
        """A file path inside the workspace (relative to it)."""
        text = self.get(key, str, default)
        resolved = (self.root / text).resolve()
        if not resolved.is_relative_to(self.root.resolve()):
            raise self.error(key, f"{text!r} points outside the workspace")
        return self.root / text


@dataclass(frozen=True)
class BackendSpec:
    """One storage backend a plugin provides."""

    name: str  # the ``[storage] backend`` value
    keys: tuple[str, ...]  # the other keys its table may hold
    open: Callable[[StorageTable], Backend]  # validates the table, then opens the backend
    doc: str = ""  # one line for docs
    # keyword-argument constructor for programmatic use (``open_backend``, ``diff-cache``)
    factory: Callable[..., Backend] | None = None


def open_from_table(specs: Mapping[str, BackendSpec], table: StorageTable) -> Backend:
    """Open the backend ``table`` names: its keys are checked against the spec, then the spec
    validates the values and opens it."""
    spec = specs.get(table.backend)
    if spec is None:
        names = sorted(specs)
        close = difflib.get_close_matches(table.backend, names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise table.error(
            "backend",
            f"unknown backend {table.backend!r}{hint}; registered: {', '.join(names)} "
            "(a plugin adds one with btbuild_storage_backends)",
        )
    table.check_keys(spec.keys)
    return spec.open(table)
