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


def _firestore(tmp: Path) -> Backend:
    emulators.firestore()
    return FirestoreBackend(prefix=f"contract/{uuid.uuid4().hex}")


BACKEND_FACTORIES: dict[str, Callable[[Path], Backend]] = {
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


@pytest.fixture(params=sorted(BACKEND_FACTORIES))
def backend(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    _emulators_stopped_at_end: None,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Backend]:
    corrupt = getattr(request.module, "corrupt_record", None)
    if request.param == "firestore" and corrupt is not None:
        # the contract module's corrupt_record has no Firestore branch (not this file's to edit)
        def corrupt_any(backend: Backend, target: str, date: str) -> None:
            if isinstance(backend, FirestoreBackend):
                corrupt_firestore_record(backend, target, date)
            else:
                corrupt(backend, target, date)

        monkeypatch.setattr(request.module, "corrupt_record", corrupt_any)
    with BACKEND_FACTORIES[request.param](tmp_path) as opened:
        yield opened
