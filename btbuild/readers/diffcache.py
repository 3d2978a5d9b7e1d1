"""``btbuild diff-cache``: which cells of two caches differ by result hash.

The operator's check after a migration, a backend change or a rebuild on another machine: the
same cells are read from both caches (summaries only, no result is decoded) and compared by
result hash, so equal results stored in different shards or generations compare equal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from btbuild.errors import UsageError
from btbuild.storage.base import Backend

SAME = "same"
DIFFERENT = "different"
ONLY_HERE = "only_here"
ONLY_OTHER = "only_other"
NEITHER = "neither"


@dataclass(frozen=True)
class CellDiff:
    label: str
    date: str
    verdict: str  # same, different, only_here, only_other, neither
    here: str | None  # result hash in this workspace's cache
    other: str | None  # result hash in the other cache

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "date": self.date,
            "verdict": self.verdict,
            "here": self.here,
            "other": self.other,
        }


def open_other(spec: str, open_backend: Callable[..., Backend]) -> Backend:
    """The other cache: an SQLite file, a workspace folder (its configured cache), or
    ``firestore:PROJECT/PREFIX``."""
    if spec.startswith("firestore:"):
        project, _, prefix = spec[len("firestore:") :].partition("/")
        if not project or not prefix:
            raise UsageError(f"OTHER_CACHE {spec!r}: expected firestore:PROJECT/PREFIX")
        return open_backend("firestore", project=project, prefix=prefix)
    path = Path(spec)
    if path.is_dir():
        from btbuild.session import open_storage
        from btbuild.workspace.config import load_workspace

        backend: Backend = open_storage(load_workspace(path))
        return backend
    if not path.is_file():
        raise UsageError(
            f"OTHER_CACHE {spec!r}: no such file or folder "
            "(give an SQLite cache file, a workspace folder or firestore:PROJECT/PREFIX)"
        )
    return open_backend("sqlite", path=path)


def diff_caches(
    here: Backend,
    other: Backend,
    names: Mapping[str, str],
    dates: Iterable[str],
) -> list[CellDiff]:
    """Every (target, date) cell of ``names`` (target name -> label) x ``dates`` that has a
    result in either cache, compared by result hash, in label then date order."""
    dates = list(dates)
    mine = _result_hashes(here, names, dates)
    theirs = _result_hashes(other, names, dates)
    found = []
    for name, label in sorted(names.items(), key=lambda item: item[1]):
        for day in dates:
            a, b = mine.get((name, day)), theirs.get((name, day))
            if a is None and b is None:
                continue
            if a == b:
                verdict = SAME
            elif a is None:
                verdict = ONLY_OTHER
            elif b is None:
                verdict = ONLY_HERE
            else:
                verdict = DIFFERENT
            found.append(CellDiff(label, day, verdict, a, b))
    return found


def _result_hashes(
    backend: Backend, names: Mapping[str, str], dates: list[str]
) -> dict[tuple[str, str], str]:
    summaries = backend.get_cell_summaries(list(names), dates)
    return {
        key: summary.result_hash
        for key, summary in summaries.items()
        if summary.has_result and summary.result_hash is not None
    }


def render(diffs: list[CellDiff], *, show_same: bool = False) -> str:
    counts = {verdict: 0 for verdict in (SAME, DIFFERENT, ONLY_HERE, ONLY_OTHER)}
    lines = []
    for diff in diffs:
        counts[diff.verdict] += 1
        if diff.verdict == SAME and not show_same:
            continue
        lines.append(
            f"{diff.verdict:<10}  {diff.label} {diff.date}  "
            f"{diff.here or '(none)'}  {diff.other or '(none)'}"
        )
    lines.append(
        f"summary: {counts[SAME]} same, {counts[DIFFERENT]} different, "
        f"{counts[ONLY_HERE]} only here, {counts[ONLY_OTHER]} only in the other cache"
    )
    return "\n".join(lines)
