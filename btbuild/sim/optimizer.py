"""Cosmetic-change optimizer: decides whether a code change is provably behaviour-preserving.

Until the simulation runner is wired in, no change is considered cosmetic: every code change
re-runs (safe, never wrong).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from btbuild.analysis.cells import CellInputs
from btbuild.storage.records import CellRecord
from btbuild.workspace.model import Target


def equivalence_checker(session: Any) -> Callable[[Target, CellRecord, CellInputs], str | None]:
    def never(target: Target, record: CellRecord, inputs: CellInputs) -> str | None:
        return None

    return never
