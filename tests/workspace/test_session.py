"""The session is a context manager: leaving the block closes the cache it opened, also on
an error; a workspace's label index is built once."""

from __future__ import annotations

from pathlib import Path

import pytest

from btbuild.session import Session


class Cache:
    closed = 0

    def close(self) -> None:
        self.closed += 1


def test_leaving_the_block_closes_the_cache(tmp_path: Path) -> None:
    cache = Cache()
    with Session(tmp_path, backend=cache) as session:
        assert session.backend is cache and cache.closed == 0
    assert cache.closed == 1
    other = Cache()
    with pytest.raises(RuntimeError), Session(tmp_path, backend=other):
        raise RuntimeError("a command failed")
    assert other.closed == 1


def test_a_session_that_opened_no_cache_closes_nothing(tmp_path: Path) -> None:
    with Session(tmp_path) as session:
        pass
    session.close()  # twice is fine


def test_the_label_index_is_built_once(tmp_path: Path) -> None:
    (tmp_path / "BUILD.toml").write_text('[workspace]\nname = "w"\n')
    (tmp_path / "calculations" / "p").mkdir(parents=True)
    (tmp_path / "calculations" / "p" / "BUILD.toml").write_text(
        '[calculation.a]\nentry = "m:f"\nkind = "per_date"\n'
    )
    (tmp_path / "calculations" / "p" / "m.py").write_text("def f(ctx):\n    return 1\n")
    workspace = Session(tmp_path).workspace
    assert workspace.by_label() is workspace.by_label()
    assert dict(workspace.by_label()) == {"//p:a": workspace.targets["a"]}
