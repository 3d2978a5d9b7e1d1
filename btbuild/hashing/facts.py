"""What hashing needs to know about one source file, and its cacheable JSON form."""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass

from btbuild.errors import WorkspaceError
from btbuild.hashing.digest import hash_text
from btbuild.hashing.imports import ImportRecord, collect_imports
from btbuild.hashing.normalize import canonical_source, parse_source

_HEX32 = re.compile(r"[0-9a-f]{32}\Z")


@dataclass(frozen=True)
class FileFacts:
    """The normalized code hash of a file and the imports it contains (unresolved)."""

    code_hash: str
    imports: tuple[ImportRecord, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "code": self.code_hash,
            "imports": [
                [record.module, record.level, list(record.names)] for record in self.imports
            ],
        }

    @classmethod
    def from_json(cls, value: object) -> FileFacts | None:
        """Rebuild from :meth:`to_json`; anything malformed gives None (a cache miss)."""
        if not isinstance(value, dict):
            return None
        code, imports = value.get("code"), value.get("imports")
        if not isinstance(code, str) or not _HEX32.match(code) or not isinstance(imports, list):
            return None
        records: list[ImportRecord] = []
        for item in imports:
            if not (isinstance(item, list) and len(item) == 3):
                return None
            module, level, names = item
            if not (
                isinstance(module, str)
                and type(level) is int
                and level >= 0
                and isinstance(names, list)
                and all(isinstance(name, str) for name in names)
            ):
                return None
            records.append(ImportRecord(module, level, tuple(names)))
        return cls(code, tuple(records))


def decode_source(raw: bytes, *, path: str) -> str:
    """Decode a Python file like the interpreter does (BOM, ``# -*- coding`` cookie, UTF-8)."""
    try:
        return importlib.util.decode_source(raw)
    except (UnicodeDecodeError, SyntaxError, LookupError) as error:
        raise WorkspaceError(
            f"cannot read this file as Python source text: {error}", path=path
        ) from None


def analyze_source(source: str, *, path: str = "<string>") -> FileFacts:
    """Parse once; derive the normalized code hash and the import records."""
    module = parse_source(source, path=path)
    return FileFacts(hash_text(canonical_source(module, path=path)), collect_imports(module))
