from __future__ import annotations

import itertools
import textwrap
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


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path
