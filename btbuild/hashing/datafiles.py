"""Data files a calculation names: their contents are inputs like its code.

A calculation reading a table next to its code (``Path(__file__).parent / "bands.json"``,
``open("calculations/risk/limits.csv")``) computes something else when the file changes, but
no code hash moves: the build used to skip every cell as up to date (stale results, exit 0).
Every string literal of the entry file and its layer files that names an existing file of the
workspace - relative to that source file's folder or to the workspace root, btbuild's own
folder excepted - is such an input: its contents' xxh3 goes into the
target's ``infra`` hash (``file:<path>``), like a package version. A change there re-runs the
target's cells; it is never judged cosmetic (the simulation proves code changes, and the old
contents are gone).

A Python file named by a literal is one too (``exec(open("rules.py").read())``,
``runpy.run_path("rules.py")`` run it without importing it): its raw bytes are the input.

Not covered: a file whose name is computed (``f"{name}.json"``), a folder listed at run
time, files outside the workspace; bump the epoch for those, or add a plugin input.
"""

from __future__ import annotations

from pathlib import Path

from btbuild.hashing.digest import hash_bytes
from btbuild.hashing.layers import FactsReader, relative_posix

_SKIPPED_SUFFIXES = frozenset({".pyc"})


class DataFiles:
    """Resolves literals to workspace files, each file read once per run."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._found: dict[tuple[Path, str], Path | None] = {}
        self._digests: dict[Path, str] = {}

    def inputs(self, sources: tuple[Path, ...], reader: FactsReader) -> dict[str, str]:
        """``{"file:<workspace-relative path>": digest}`` of the files ``sources`` name."""
        found: dict[str, str] = {}
        for source in sources:
            for literal in reader(source).paths:
                for base in (source.parent, self.root):
                    path = self._resolve(base, literal)
                    if path is not None:
                        found[f"file:{relative_posix(path, self.root)}"] = self.digest(path)
        return dict(sorted(found.items()))

    def _resolve(self, base: Path, literal: str) -> Path | None:
        key = (base, literal)
        if key not in self._found:
            self._found[key] = self._check(base, literal)
        return self._found[key]

    def _check(self, base: Path, literal: str) -> Path | None:
        try:
            path = (base / literal).resolve()
            if not path.is_file() or path.suffix in _SKIPPED_SUFFIXES:
                return None
            inside = path.relative_to(self.root)
        except (OSError, ValueError, RuntimeError):
            return None  # outside the workspace, unreadable, a name the OS refuses
        if inside.parts and inside.parts[0] == ".btbuild":
            return None
        return path

    def digest(self, path: Path) -> str:
        if path not in self._digests:
            try:
                self._digests[path] = hash_bytes(path.read_bytes())
            except OSError as error:
                self._digests[path] = f"unreadable: {error.strerror or error}"
        return self._digests[path]
