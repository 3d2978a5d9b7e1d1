"""Layers: the workspace-local modules a calculation imports, transitively.

A layer's contribution to the hash is its workspace-relative path and its normalized code
hash; third-party imports found on the way feed the infrastructure hash instead.
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from btbuild.errors import WorkspaceError
from btbuild.hashing.cache import HashCache
from btbuild.hashing.digest import hash_bytes, hash_json
from btbuild.hashing.facts import FileFacts, analyze_source, decode_source
from btbuild.hashing.imports import (
    ImportRecord,
    is_local_package_dir,
    is_stdlib,
    package_inits,
    resolve_module,
)

# the digest of the raw bytes of every Python file this process last hashed for the build's
# keys, by resolved path: a module loaded to run cells must still be those bytes
# (btbuild/execution/loader.py), and so must a snapshot of the code (btbuild/sim/snapshots.py)
HASHED: dict[str, str] = {}


def hashed_digest(path: str) -> str | None:
    """The digest of ``path``'s bytes when this process last hashed it (None: it did not)."""
    return HASHED.get(os.path.realpath(path))


class FactsReader:
    """Reads files once per run: raw bytes -> cache lookup -> parse only on a miss."""

    def __init__(self, cache: HashCache | None = None, *, keys: bool = False) -> None:
        """``keys``: this reader hashes the code the build's keys are made of, so the digests
        of the files it reads are recorded in :data:`HASHED` (other readers, e.g. the
        coverage of a change reading the files again later, never replace them)."""
        self.cache = cache if cache is not None else HashCache()
        self.keys = keys
        self._memo: dict[Path, FileFacts] = {}
        self._entries: dict[tuple[Path, str], str] = {}
        self._slices: dict[tuple[Path, frozenset[str]], frozenset[int] | None] = {}

    def __call__(self, path: Path) -> FileFacts:
        facts = self._memo.get(path)
        if facts is None:
            try:
                raw = path.read_bytes()
            except OSError as error:
                raise WorkspaceError(
                    f"cannot read this file to hash it: {error.strerror or error}", path=path
                ) from None
            if self.keys:
                HASHED[os.path.realpath(path)] = hash_bytes(raw)
            key = self.cache.key_for(raw)
            facts = self.cache.get(key)
            if facts is None:
                facts = analyze_source(decode_source(raw, path=str(path)), path=str(path))
                self.cache.put(key, facts)
            self._memo[path] = facts
        return facts

    def slice(self, path: Path, names: frozenset[str]) -> frozenset[int] | None:
        """:meth:`FileFacts.slice` of ``path``, computed once per set of names."""
        key = (path, names)
        if key not in self._slices:
            self._slices[key] = self(path).slice(names)
        return self._slices[key]

    def entry_code(self, path: Path, entry_attr: str) -> str:
        """The code hash of ``entry_attr`` in ``path`` (see :meth:`FileFacts.entry_code_hash`)."""
        key = (path, entry_attr)
        digest = self._entries.get(key)
        if digest is None:
            digest = self._entries[key] = self(path).entry_code_hash(entry_attr)
        return digest


@dataclass(frozen=True)
class LayerScan:
    """What a calculation imports: local layer files (entry excluded) and third-party names."""

    files: tuple[Path, ...]
    third_party: tuple[str, ...]  # top-level module names, sorted
    imports_entry: bool = False  # the entry file is imported again (by itself or a layer)
    # why any workspace module may be imported (a computed dynamic import, sys.path changed):
    # then every Python file of the workspace is a whole layer ("" when none)
    any_module: str = ""


class LayerScanner:
    """Walks import graphs iteratively; module resolutions are shared between calculations."""

    def __init__(self, workspace_root: Path, reader: FactsReader | None = None) -> None:
        self.root = workspace_root
        self.reader = reader if reader is not None else FactsReader()
        self._resolved: dict[tuple[str, tuple[Path, ...]], list[Path] | None] = {}
        self._modules: list[Path] | None = None

    def scan(self, entry_file: Path) -> LayerScan:
        search_dirs = _unique((entry_file.parent, self.root))
        seen: set[Path] = {entry_file}
        third_party: set[str] = set()
        imports_entry = False
        any_module = ""
        queue = deque([entry_file])
        while queue:
            current = queue.popleft()
            facts = self.reader(current)
            if facts.any_module and not any_module:
                any_module = f"{relative_posix(current, self.root)} {facts.any_module}"
                fresh = [path for path in self.workspace_modules() if path not in seen]
                fresh = [path for path in fresh if self._parses(path)]
                seen.update(fresh)
                queue.extend(fresh)
            for record in facts.imports:
                for found in self._record_files(record, current, search_dirs, third_party):
                    if found == entry_file:
                        imports_entry = True
                    elif found not in seen:
                        seen.add(found)
                        queue.append(found)
        seen.discard(entry_file)
        return LayerScan(
            tuple(sorted(seen, key=lambda p: p.as_posix())),
            tuple(sorted(third_party)),
            imports_entry,
            any_module,
        )

    def _parses(self, path: Path) -> bool:
        """A file that is not valid Python cannot be imported: not a layer of the fallback."""
        try:
            self.reader(path)
        except WorkspaceError:
            return False
        return True

    def workspace_modules(self) -> list[Path]:
        """Every Python file of the workspace (hidden folders, ``__pycache__`` and virtual
        environments excepted): what a computed dynamic import may load."""
        if self._modules is None:
            found: list[Path] = []
            for folder, dirs, files in os.walk(self.root):
                dirs[:] = sorted(
                    name
                    for name in dirs
                    if not name.startswith(".")
                    and name not in ("__pycache__", "site-packages", "node_modules")
                    and not os.path.exists(os.path.join(folder, name, "pyvenv.cfg"))
                )
                found.extend(Path(folder) / name for name in sorted(files) if name.endswith(".py"))
            self._modules = found
        return self._modules

    def _record_files(
        self,
        record: ImportRecord,
        importer: Path,
        search_dirs: tuple[Path, ...],
        third_party: set[str],
    ) -> list[Path]:
        if record.level:
            base = importer.parent
            for _ in range(record.level - 1):
                base = base.parent
            dirs: tuple[Path, ...] = (base,)
        else:
            dirs = search_dirs
        files: list[Path] = []
        module_files = self._resolve(record.module, dirs) if record.module else None
        if module_files:
            files.extend(module_files)
        for name in record.names:
            if name == "*":
                continue
            submodule = f"{record.module}.{name}" if record.module else name
            files.extend(self._resolve(submodule, dirs) or ())
        if (
            not files
            and not record.level
            and not is_stdlib(record.module)
            and not is_local_package_dir(record.module, dirs)
        ):
            third_party.add(record.module.split(".")[0])
        return files

    def _resolve(self, name: str, dirs: tuple[Path, ...]) -> list[Path] | None:
        key = (name, dirs)
        if key not in self._resolved:
            found = resolve_module(name, dirs)
            self._resolved[key] = None if found is None else [*package_inits(name, found), found]
        return self._resolved[key]


def _unique(paths: tuple[Path, ...]) -> tuple[Path, ...]:
    return tuple(dict.fromkeys(paths))


def layer_files(
    entry_file: Path, workspace_root: Path, *, cache: HashCache | None = None
) -> list[Path]:
    """The workspace-local modules ``entry_file`` imports, transitively, sorted; entry excluded."""
    return list(LayerScanner(workspace_root, FactsReader(cache)).scan(entry_file).files)


def relative_posix(path: Path, root: Path) -> str:
    return Path(os.path.relpath(path, root)).as_posix()


def layer_hash(
    files: tuple[Path, ...] | list[Path], workspace_root: Path, reader: FactsReader
) -> str:
    """Hash over sorted (workspace-relative posix path, code hash) pairs."""
    pairs = sorted((relative_posix(path, workspace_root), reader(path).code_hash) for path in files)
    return hash_json(pairs)
