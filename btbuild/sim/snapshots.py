"""Source snapshots: the code behind a code hash, for coverage of a change in a build.

A build only knows the *hash* of the code that made a stored cell. Coverage of the change
(:mod:`btbuild.sim.coverage`) needs that code itself, so whenever a SimHash is registered the
target's entry file and layers are recorded too, under the registry key ``code:<code key>``
and version ``SNAPSHOT_VERSION`` (zlib-compressed JSON, base64: any backend's registry can
hold it). :func:`materialized` writes a snapshot into a temporary folder and gives the old
version of the target and workspace, loadable like any workspace code.
"""

from __future__ import annotations

import base64
import json
import shutil
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from btbuild.errors import WorkspaceError
from btbuild.hashing.composite import code_key_of
from btbuild.hashing.digest import hash_bytes
from btbuild.hashing.layers import hashed_digest
from btbuild.sim.changes import VersionFiles
from btbuild.workspace.model import Target, Workspace

SNAPSHOT_VERSION = "code-snapshot-1"
MAX_BYTES = 700_000  # compressed; larger code is not recorded (coverage then says so)


@dataclass(frozen=True)
class Snapshot:
    entry: str  # workspace-relative posix path of the entry file
    files: dict[str, str]  # workspace-relative posix path -> source text


def _key(code_key: str) -> str:
    return f"code:{code_key}"


def take(target: Target, workspace: Workspace) -> Snapshot:
    """The target's code as this process hashed it for the build's keys; ValueError when a
    file is not (edited since, or never hashed here): recorded under the code key it would
    be old code of another version, and the coverage of a later change from that key would
    compare the wrong sources."""
    version = VersionFiles.of(target, workspace)
    files = {}
    for path in version.files:
        raw = path.read_bytes()
        hashed = hashed_digest(str(path))
        if hashed is None or hash_bytes(raw) != hashed:
            raise ValueError(f"{path} is not the code the build hashed")
        files[version.shown(path)] = raw.decode("utf-8")
    return Snapshot(version.shown(target.entry_file), files)


def remember(backend: Any, code_key: str, target: Target, workspace: Workspace) -> None:
    """Record ``target``'s current code under ``code_key`` (once; best effort)."""
    if backend.get_sim_hash(_key(code_key), SNAPSHOT_VERSION) is not None:
        return
    try:
        snapshot = take(target, workspace)
    except (OSError, UnicodeDecodeError, ValueError):
        return
    raw = json.dumps({"entry": snapshot.entry, "files": snapshot.files}, sort_keys=True)
    packed = base64.b64encode(zlib.compress(raw.encode(), 6)).decode()
    if len(packed) <= MAX_BYTES:
        backend.put_sim_hash(_key(code_key), SNAPSHOT_VERSION, packed)


def recall(backend: Any, code_key: str) -> Snapshot | None:
    packed = backend.get_sim_hash(_key(code_key), SNAPSHOT_VERSION)
    if packed is None:
        return None
    try:
        data = json.loads(zlib.decompress(base64.b64decode(packed)).decode())
        entry, files = data["entry"], data["files"]
        if not isinstance(entry, str) or not isinstance(files, dict) or entry not in files:
            return None
        return Snapshot(entry, {str(k): str(v) for k, v in files.items()})
    except (ValueError, KeyError, TypeError, zlib.error):
        return None  # a damaged entry is a missing one


def is_code_of(code_key: str, workspace: Workspace, target: Target) -> bool:
    """Whether the materialized snapshot (``workspace``, ``target``) hashes to ``code_key``:
    an entry that decodes but holds other code (garbled, written by another version, or
    under a key it is not the code of) must not stand for the old code, or the coverage of a
    change would compare the wrong sources and could pass a change it never traced."""
    try:
        return code_key_of(workspace, target) == code_key
    except (WorkspaceError, OSError, ValueError, SyntaxError, RecursionError):
        return False  # not parsable or not readable: not that code


@contextmanager
def materialized(
    snapshot: Snapshot, workspace: Workspace, target: Target
) -> Iterator[tuple[Workspace, Target]]:
    """The snapshot's version of ``target`` in a temporary copy of its files (removed after)."""
    temp = Path(tempfile.mkdtemp(prefix="btbuild-snapshot-"))
    try:
        for relative, text in snapshot.files.items():
            path = (temp / relative).resolve()
            if temp.resolve() not in path.parents:
                continue  # a path escaping the folder is never written
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        old_target = replace(target, entry_file=temp / snapshot.entry)
        old_workspace = replace(
            workspace, root=temp, targets={**workspace.targets, target.name: old_target}
        )
        yield old_workspace, old_target
    finally:
        shutil.rmtree(temp, ignore_errors=True)


__all__ = [
    "SNAPSHOT_VERSION",
    "Snapshot",
    "is_code_of",
    "materialized",
    "recall",
    "remember",
    "take",
]
