"""A persistent cache of per-file hashing facts, keyed by the raw file bytes.

Modelled on black's cache: the file carries the scheme and tool versions, and anything
unreadable (missing, truncated, garbage, another version) is a miss, never a crash. On an
unchanged workspace a run costs one read and one xxhash per file.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from functools import cache
from pathlib import Path

from btbuild.hashing.digest import hash_bytes
from btbuild.hashing.facts import FileFacts
from btbuild.hashing.infra import HASH_SCHEME_VERSION, python_minor

CACHE_FORMAT = "btbuild-hashcache"
CACHE_RELATIVE_PATH = Path(".btbuild") / "hashcache.json"
MAX_ENTRIES = 50_000  # beyond this, entries not used by the current run are dropped on save

_log = logging.getLogger(__name__)


@cache
def cache_tool_key() -> str:
    """What the cached facts depend on besides the file bytes: the hash scheme, the Python
    minor version (``ast`` and the builtins list follow it) and the code that computes the
    facts (every module of this package): a btbuild whose hashing changed never reuses facts
    an older one cached, even if nobody bumped the scheme."""
    package = Path(__file__).resolve().parent
    sources = b"".join(
        path.name.encode() + b"\0" + path.read_bytes() + b"\0"
        for path in sorted(package.glob("*.py"))
    )
    return f"scheme={HASH_SCHEME_VERSION};python={python_minor()};code={hash_bytes(sources)[:16]}"


class HashCache:
    """File facts by ``xxh3_128(raw bytes)``; ``path=None`` keeps it in memory only."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._entries: dict[str, object] = self._load(path) if path is not None else {}
        self._used: set[str] = set()
        self._dirty = False
        self.hits = 0
        self.misses = 0

    @classmethod
    def for_workspace(cls, root: Path) -> HashCache:
        return cls(root / CACHE_RELATIVE_PATH)

    @staticmethod
    def key_for(raw: bytes) -> str:
        return hash_bytes(raw)

    def get(self, key: str) -> FileFacts | None:
        facts = FileFacts.from_json(self._entries.get(key))
        if facts is None:
            self.misses += 1
            return None
        self.hits += 1
        self._used.add(key)
        return facts

    def put(self, key: str, facts: FileFacts) -> None:
        self._entries[key] = facts.to_json()
        self._used.add(key)
        self._dirty = True

    def __len__(self) -> int:
        return len(self._entries)

    def save(self) -> None:
        """Write atomically (temp file + ``os.replace``) if anything changed.

        A failure to write only costs speed on the next run, so it is logged, not raised.
        """
        if self.path is None or not self._dirty:
            return
        entries = self._entries
        if len(entries) > MAX_ENTRIES:
            entries = {key: value for key, value in entries.items() if key in self._used}
        document = {"format": CACHE_FORMAT, "tool": cache_tool_key(), "entries": entries}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(
                prefix=".hashcache.", suffix=".tmp", dir=self.path.parent
            )
            try:
                with os.fdopen(handle, "w", encoding="utf-8") as stream:
                    json.dump(document, stream, separators=(",", ":"))
                os.replace(temporary, self.path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except OSError as error:
            _log.warning("could not write the hash cache %s: %s", self.path, error)
            return
        self._entries = entries
        self._dirty = False

    @staticmethod
    def _load(path: Path) -> dict[str, object]:
        try:
            document = json.loads(path.read_bytes())
        except (OSError, ValueError):  # missing, unreadable, truncated or not JSON
            return {}
        if (
            not isinstance(document, dict)
            or document.get("format") != CACHE_FORMAT
            or document.get("tool") != cache_tool_key()
            or not isinstance(document.get("entries"), dict)
        ):
            return {}
        entries: dict[str, object] = document["entries"]
        return entries
