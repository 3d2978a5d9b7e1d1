from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from btbuild.hashing import DistributionIndex
from btbuild.testing import write_tree


@pytest.fixture
def tree(tmp_path: Path) -> Callable[[Mapping[str, str]], Path]:
    """Write files under one workspace root (callable several times to add/overwrite)."""
    root = tmp_path / "ws"

    def write(files: Mapping[str, str]) -> Path:
        return write_tree(root, files)

    return write


@pytest.fixture
def no_distributions() -> DistributionIndex:
    return DistributionIndex(packages={}, versions={})
