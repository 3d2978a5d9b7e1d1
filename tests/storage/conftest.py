"""Backends under test: every contract test runs once per entry of BACKEND_FACTORIES.

A new backend (Firestore, issue 7) joins the contract suite by adding a factory here; a
factory may call ``pytest.skip`` when its service is unavailable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from btbuild.storage import Backend, MemoryBackend, SqliteBackend

BACKEND_FACTORIES: dict[str, Callable[[Path], Backend]] = {
    "memory": lambda tmp: MemoryBackend(),
    "sqlite": lambda tmp: SqliteBackend(tmp / "cache" / "cache.db"),
}


@pytest.fixture(params=sorted(BACKEND_FACTORIES))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    with BACKEND_FACTORIES[request.param](tmp_path) as opened:
        yield opened
