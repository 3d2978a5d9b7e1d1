"""Workspace Python files run from exactly the bytes the build hashed, compiled by content.

Python's bytecode cache (``__pycache__/*.pyc``) is by default trusted when the source file's
modification time, in whole seconds, and its size are those recorded in it. An edit that
keeps the size within the same second, or a file copied with its timestamp (``cp -p``,
``shutil.copy2``, ``rsync -a``, tar, a container layer, Nix's mtime 1), ran the OLD bytecode
while the build hashed the new source: the cells were stored under the new code's key with
the old code's results (exit 0). The build's loads of workspace files never read that cache:

* :class:`VerifiedLoader` reads the source bytes, compiles them or takes their code from
  btbuild's own cache, keyed by a digest of exactly those bytes and the file's path, each
  entry sealed by a digest of its body (a damaged entry is compiled again, never run);
* it records the digest of the bytes it compiled (:func:`compiled_digest`), which the loader
  compares with the digest the build hashed: a file edited between the two is refused, even
  when it was put back before the check read it again;
* :func:`install` puts a finder in front of Python's path finder for the process, so a
  workspace helper is loaded this way too, also when a function imports it at call time.

The cache lives in ``.btbuild/bytecode`` (one small file per version of a file's source);
``btbuild gc`` keeps only the entries of the workspace files' current bytes (:func:`prune`).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import marshal
import os
import sys
from pathlib import Path
from types import CodeType
from typing import Any

import xxhash

CACHE_FOLDER = Path(".btbuild") / "bytecode"
_TAG = importlib.util.MAGIC_NUMBER.hex()  # a new Python's bytecode never meets an old one's
_SEAL = 16  # bytes of the xxh3_128 digest of an entry's body, before the body

# realpath -> xxh3_128 hex digest of the bytes last compiled from it in this process
_COMPILED: dict[str, str] = {}
_ROOTS: dict[str, Path] = {}  # workspace root (with a trailing separator) -> its cache folder


def compiled_digest(path: str) -> str | None:
    """The digest of the bytes this process last compiled from ``path`` (None: it did not)."""
    return _COMPILED.get(os.path.realpath(path))


def is_workspace_file(file: str, root: str) -> bool:
    """A Python file of the workspace's own code (not in a hidden folder such as a virtual
    environment, not an installed package)."""
    prefix = root.rstrip(os.sep) + os.sep
    if not file.startswith(prefix):
        return False
    parts = Path(file[len(prefix) :]).parts
    return not any(part.startswith(".") or part == "site-packages" for part in parts)


class VerifiedLoader(importlib.machinery.SourceFileLoader):
    """A source loader that never trusts a timestamp: see the module docstring."""

    def __init__(self, fullname: str, path: str, cache: Path | None) -> None:
        super().__init__(fullname, path)
        self.cache = cache

    def get_code(self, fullname: str) -> CodeType:
        path = self.get_filename(fullname)
        data = self.get_data(path)
        digest = xxhash.xxh3_128_hexdigest(data)
        _COMPILED[os.path.realpath(path)] = digest
        entry = None
        if self.cache is not None:
            key = entry_key(path, digest)
            entry = self.cache / key[:2] / key
            code = _cached(entry)
            if code is not None:
                return code
        code = self.source_to_code(data, path)
        if entry is not None:  # btbuild's own state, like its hash cache: written even
            # under PYTHONDONTWRITEBYTECODE (which keeps __pycache__ out of source folders)
            _store(entry, code)
        return code


def entry_key(path: str, digest: str) -> str:
    """The name of the cache entry of ``path``'s source whose bytes have ``digest``."""
    return xxhash.xxh3_128_hexdigest(f"{_TAG}\0{path}\0{digest}".encode())


def prune(root: Path, *, dry_run: bool = False) -> int:
    """Delete every file of ``root``'s bytecode cache that is not the entry of a workspace
    Python file's current bytes (older versions, another Python's, a writer's leftover
    temporary file); returns how many. Safe while builds run: a reader that misses an entry
    compiles the source again, and a writer whose temporary file went gives up storing."""
    cache = root / CACHE_FOLDER
    if not cache.is_dir():
        return 0
    keep = set()
    for folder, folders, files in os.walk(root):
        folders[:] = [f for f in folders if not f.startswith(".") and f != "site-packages"]
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                try:
                    keep.add(entry_key(path, xxhash.xxh3_128_hexdigest(Path(path).read_bytes())))
                except OSError:
                    continue
    dropped = 0
    for entry in cache.glob("*/*"):
        if entry.name in keep:
            continue
        try:
            if not dry_run:
                entry.unlink()
            dropped += 1
        except OSError:
            continue
    return dropped


def _cached(entry: Path) -> CodeType | None:
    try:
        raw = entry.read_bytes()
    except OSError:
        return None
    body = raw[_SEAL:]
    if xxhash.xxh3_128_digest(body) != raw[:_SEAL]:
        return None  # damaged (or cut short): compiled again, and the entry rewritten
    try:
        code = marshal.loads(body)
    except (ValueError, EOFError, TypeError):
        return None
    return code if isinstance(code, CodeType) else None


def _store(entry: Path, code: CodeType) -> None:
    body = marshal.dumps(code)
    # unique per writer, also across hosts sharing the workspace (containers reuse pids)
    temp = entry.with_name(f"{entry.name}.{os.getpid()}.{os.urandom(6).hex()}.tmp")
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        temp.write_bytes(xxhash.xxh3_128_digest(body) + body)
        os.replace(temp, entry)  # whole or not at all: a reader never sees half an entry
    except OSError:  # a read-only workspace: compiled each time
        temp.unlink(missing_ok=True)


class _Finder:
    """Loads the workspace files Python's path finder finds with :class:`VerifiedLoader`."""

    @staticmethod
    def find_spec(fullname: str, path: Any = None, target: Any = None) -> Any:
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or type(spec.loader) is not importlib.machinery.SourceFileLoader:
            return spec  # what the path finder itself would have returned
        origin = str(spec.origin)
        for root, cache in _ROOTS.items():
            if is_workspace_file(origin, root):
                spec.loader = VerifiedLoader(fullname, origin, cache)
                break
        return spec

    @staticmethod
    def invalidate_caches() -> None:
        importlib.machinery.PathFinder.invalidate_caches()


_FINDER = _Finder()


def install(root: Path) -> Path:
    """Load the files of the workspace at ``root`` with :class:`VerifiedLoader` from now on
    in this process; the workspace's bytecode cache folder."""
    cache = root / CACHE_FOLDER
    _ROOTS[str(root).rstrip(os.sep) + os.sep] = cache
    if _FINDER not in sys.meta_path:
        index = next(
            (i for i, f in enumerate(sys.meta_path) if f is importlib.machinery.PathFinder),
            len(sys.meta_path),
        )
        sys.meta_path.insert(index, _FINDER)
    return cache


__all__ = [
    "CACHE_FOLDER",
    "VerifiedLoader",
    "compiled_digest",
    "entry_key",
    "install",
    "is_workspace_file",
    "prune",
]
