"""The two primitives every btbuild hash is made of: xxh3_128 of bytes, and of canonical JSON.

Components are combined by hashing a canonical JSON document (sorted keys, no whitespace),
never by concatenating strings, so no two different inputs can share an encoding.
"""

from __future__ import annotations

import json

import xxhash


def hash_bytes(data: bytes) -> str:
    """The xxh3_128 hex digest (32 characters) of ``data``."""
    return xxhash.xxh3_128_hexdigest(data)


def hash_text(text: str) -> str:
    return hash_bytes(text.encode("utf-8"))


def canonical_json(value: object) -> str:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def hash_json(value: object) -> str:
    """Hash a JSON-serialisable value through its canonical encoding."""
    return hash_text(canonical_json(value))
