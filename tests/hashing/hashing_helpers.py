"""Helpers for the hashing tests: build Target/Workspace values directly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

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


def json_under_hash_seeds(code: str, seeds: tuple[str, ...]) -> list[Any]:
    """Run ``code`` (which prints one JSON value) in a fresh interpreter per PYTHONHASHSEED."""
    outputs = []
    for seed in seeds:
        result = subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        outputs.append(json.loads(result.stdout))
    return outputs
