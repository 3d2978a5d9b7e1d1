"""Backends under test: every contract test runs once per entry of BACKEND_FACTORIES.

A new backend (Firestore, issue 7) joins the contract suite by adding a factory here; a
factory may call ``pytest.skip`` when its service is unavailable. The Firestore factory uses
the emulator (started once per session, see tests/cloud/emulators.py) and a fresh collection
prefix per test; it skips without gcloud, and fails instead when ``CI`` is set.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from btbuild.storage import Backend, FirestoreBackend, MemoryBackend, SqliteBackend
from tests.cloud import emulators
from tests.storage.toy_backend import JsonFileBackend


def _firestore(tmp: Path) -> Backend:
    emulators.firestore()
    return FirestoreBackend(prefix=f"contract/{uuid.uuid4().hex}")


BACKEND_FACTORIES: dict[str, Callable[[Path], Backend]] = {
    "jsonfile": lambda tmp: JsonFileBackend(tmp / "cache" / "cache.json"),  # a plugin's backend
    "memory": lambda tmp: MemoryBackend(),
    "sqlite": lambda tmp: SqliteBackend(tmp / "cache" / "cache.db"),
    "firestore": _firestore,
}


@pytest.fixture(scope="session")
def _emulators_stopped_at_end() -> Iterator[None]:
    yield
    emulators.stop_all()


def corrupt_firestore_record(backend: FirestoreBackend, target: str, date: str) -> None:
    backend.cells.document(f"{target}__{date}").update({"data": '["half'})


def overwrite_shard(
    backend: Backend, target: str, date: str, generation: str, index: int, data: bytes
) -> None:
    """Damage a committed shard where the backend keeps it: a Firestore one-shard result is
    inline in its cell document (firestore_cells.py), every other shard is a shard."""
    if isinstance(backend, FirestoreBackend) and index == 0:
        ref = backend.cells.document(f"{target}__{date}")
        if (ref.get().to_dict() or {}).get("inline_gen") == generation:
            ref.update({"inline": data})
            return
    backend._write_shards(target, date, generation, {index: data})


def edit_json_record(backend: JsonFileBackend, target: str, date: str, **fields: object) -> None:
    with backend._state(write=True) as state:
        state["cells"][f"{target}\0{date}"].update(fields)


@pytest.fixture(params=sorted(BACKEND_FACTORIES))
def backend(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    _emulators_stopped_at_end: None,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Backend]:
    corrupt = getattr(request.module, "corrupt_record", None)
    if request.param in ("firestore", "jsonfile") and corrupt is not None:
        # the contract module's corrupt_record knows memory and SQLite only
        def corrupt_any(backend: Backend, target: str, date: str) -> None:
            if isinstance(backend, FirestoreBackend):
                corrupt_firestore_record(backend, target, date)
            elif isinstance(backend, JsonFileBackend):
                edit_json_record(backend, target, date, status=42)
            else:
                corrupt(backend, target, date)

        monkeypatch.setattr(request.module, "corrupt_record", corrupt_any)
    with BACKEND_FACTORIES[request.param](tmp_path) as opened:
        yield opened
