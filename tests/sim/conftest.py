from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sim_helpers import write_workspace

from btbuild.cli.main import main


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return write_workspace(tmp_path / "ws")


Run = Callable[..., tuple[int, Any]]


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Run:
    """Run btbuild in-process; returns (exit code, parsed JSON stdout or text)."""

    def run(*args: str, parse: bool = True) -> tuple[int, Any]:
        capsys.readouterr()
        code = main(list(args))
        out = capsys.readouterr()
        if parse:
            try:
                return code, json.loads(out.out)
            except json.JSONDecodeError:
                pass
        return code, out.out + out.err

    return run
