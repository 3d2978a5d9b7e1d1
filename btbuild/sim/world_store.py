"""Fabricated values kept across processes: cold fabrication is most of a simulation's cost.

A :class:`~btbuild.sim.fabricator.Fabricator` draws every root value it is asked for from the
sources' Hypothesis strategies (and random-walks the deeper look-back days, perturbs the real
days it samples). Those values are a pure function of what the fabricator's version already
covers (its own version, Hypothesis', each source's strategy key and schema, the fingerprints
of the real days sampled) plus the seed, the Python version and the code of the modules that
compute them. This module keeps them:

* **in the process**: every fabricator with the same key shares one dict of values (verify,
  the build's judge, its replay and its coverage search each used to start cold);
* **on disk**, in ``<workspace>/.btbuild/sim-worlds/<key>.pickle``: a later ``build``,
  ``verify`` or ``sim`` in the workspace starts warm. The file holds an xxh3 checksum of its
  payload; a file that is damaged, truncated or unreadable is ignored (the values are drawn
  again, identically), and writes go through a temporary file and ``os.replace``, so
  concurrent writers never leave a torn file (the last one wins; what it lacks is drawn again).

Only the drawn values are kept, never anything computed from calculation code; the
transforms of edge, crowd and literal worlds are applied to them as before. The key covers
everything the values depend on, so a stale file is never read: it is simply not found.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import sys
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import xxhash

from btbuild.hashing.digest import hash_json

STORE_FOLDER = Path(".btbuild") / "sim-worlds"
_MAGIC = b"btbuild-sim-worlds-1\n"
# the modules whose code computes the kept values (draws, random walks, perturbed real days)
_MODULES = (
    "fabricator.py",
    "draws.py",
    "worlds.py",
    "realdata.py",
    "schema_values.py",
    "literals.py",
)

_SHARED: dict[str, dict[tuple[Any, ...], Any]] = {}
_FILES: dict[str, Path] = {}
_SAVED: dict[str, int] = {}  # entries in the file when it was last read or written


@cache
def code_digest() -> str:
    here = Path(__file__).parent
    return hash_json(
        [(name, xxhash.xxh3_64_hexdigest((here / name).read_bytes())) for name in _MODULES]
    )


def store_key(version: str, seed: int) -> str:
    return hash_json([version, seed, list(sys.version_info[:2]), code_digest()])[:32]


def shared_values(key: str, folder: Path | None) -> dict[tuple[Any, ...], Any]:
    """The values of every fabricator with ``key`` in this process (read from ``folder``'s
    file the first time)."""
    values = _SHARED.get(key)
    if values is None:
        path = folder / f"{key}.pickle" if folder is not None else None
        values = _SHARED[key] = _read(path) if path is not None else {}
        _SAVED[key] = len(values)
        if path is not None:
            _FILES[key] = path
    elif folder is not None and key not in _FILES:
        _FILES[key] = folder / f"{key}.pickle"
    return values


def save_all() -> int:
    """Write every store that gained values since it was read or written; returns how many
    files were written. Never raises: a read-only or full disk only costs a cold start."""
    written = 0
    for key, path in list(_FILES.items()):
        values = _SHARED.get(key, {})
        if len(values) <= _SAVED.get(key, 0):
            continue
        with contextlib.suppress(OSError, pickle.PicklingError, TypeError, RecursionError):
            _write(path, values)
            _SAVED[key] = len(values)
            written += 1
    return written


def _read(path: Path) -> dict[tuple[Any, ...], Any]:
    try:
        raw = path.read_bytes()
    except OSError:
        return {}
    head = len(_MAGIC) + 16
    if not raw.startswith(_MAGIC) or len(raw) < head:
        return {}
    digest, payload = raw[len(_MAGIC) : head], raw[head:]
    if xxhash.xxh3_128_digest(payload) != digest:
        return {}
    try:
        values = pickle.loads(payload)
    except Exception:  # noqa: BLE001 - a damaged file is a cold start, never an error
        return {}
    return values if isinstance(values, dict) else {}


def _write(path: Path, values: dict[tuple[Any, ...], Any]) -> None:
    payload = pickle.dumps(values, protocol=pickle.HIGHEST_PROTOCOL)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".pickle")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(_MAGIC + xxhash.xxh3_128_digest(payload) + payload)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def forget() -> None:
    """Drop the in-process stores (tests and benchmarks measuring cold starts)."""
    _SHARED.clear()
    _FILES.clear()
    _SAVED.clear()


__all__ = ["STORE_FOLDER", "forget", "save_all", "shared_values", "store_key"]
