from __future__ import annotations

import itertools
from pathlib import Path

import pytest

_counter = itertools.count()


@pytest.fixture
def syspath_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh folder on sys.path for throw-away installed modules and dist-infos."""
    folder = tmp_path / f"site{next(_counter)}"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    return folder
