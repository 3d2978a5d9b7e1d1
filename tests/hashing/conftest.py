from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from pathlib import Path

import pytest

from btbuild.hashing import DistributionIndex
from btbuild.testing import write_tree
from btbuild.workspace.model import ExecutionSettings, StorageSettings, Target, Workspace

CALC = """\
class Calc:
    def process(self, ctx):
        return {"value": 1}
"""


def make_target(
    root: Path, name: str, package: str = "p", entry: str | None = None, **fields: object
) -> Target:
    entry_file = root / "calculations" / package / (entry or f"{name}.py")
    return Target(name=name, package=package, entry_file=entry_file, entry_attr="Calc", **fields)  # type: ignore[arg-type]


def make_workspace_value(root: Path, targets: list[Target], epoch: int = 1) -> Workspace:
    return Workspace(
        root=root,
        name="t",
        packages_dir=root / "calculations",
        epoch=epoch,
        plugins=(),
        start_date=date(2024, 1, 1),
        storage=StorageSettings(),
        execution=ExecutionSettings(),
        targets={t.name: t for t in sorted(targets, key=lambda t: t.label)},
    )


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
