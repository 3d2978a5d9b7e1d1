"""Measure the corpus through the real commands: ``btbuild verify --base`` and ``btbuild build``.

A *base* is the corpus workspace (tests/sim/realistic/workspace) with its JSON Lines data, in
a fresh git repository, built over the window. Each edit (a hand-written bug or refactor, or a
mutant) runs on a copy of the base, as in CI and then production:

1. the edit is applied and committed;
2. ``btbuild verify --base HEAD~1`` (the PR check, while the cache holds the old results);
3. ``btbuild build <changed targets>`` over the window (skipped ``cosmetic`` or re-run);
4. the **oracle**: the new code's real results on every cell of the window, compared with the
   base's stored ones. Cells that ran already hold them; when any cell was skipped as
   cosmetic, ``btbuild build --force`` runs the new code on them first. The oracle shares no
   code with the simulation (no fabricated data, no SimHash, no canonical form of btbuild's):
   it is the real executor on the real sources' data, compared value by value, exactly as
   stored (a float's last bit counts: a clean build of the new code stores those bytes).

A behaviour change (the oracle sees a difference) is *missed* when a cell was skipped as
cosmetic or verify exited 0. A refactor is *proven* when every cell was skipped as cosmetic.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
TEMPLATE = HERE / "workspace"
FIRST, LAST = date(2024, 1, 2), date(2024, 1, 19)
SEARCH_SECONDS = "0.5"  # verify's harder search per equal-looking target

if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from datagen import write_data  # noqa: E402

from btbuild.cli.main import main  # noqa: E402
from btbuild.session import Session  # noqa: E402

LABELS = {
    path.stem: f"//{path.parent.name}:{path.stem}"
    for path in (TEMPLATE / "calculations").glob("*/*.py")
}


@dataclass(frozen=True)
class Edit:
    """One change of the corpus: ``replacements`` in ``path``, or a whole new ``source``."""

    kind: str  # "bug", "refactor" or "mutant"
    klass: str  # the class of change (a bug's failure class, a refactor's technique)
    targets: tuple[str, ...]  # the calculations whose results the edit may change
    path: str  # the edited file, relative to the workspace
    description: str
    replacements: tuple[tuple[str, str], ...] = ()
    source: str | None = None

    @property
    def id(self) -> str:
        return f"{Path(self.path).stem}:{self.description}"

    def new_text(self, old: str) -> str:
        if self.source is not None:
            return self.source
        text = old
        for before, after in self.replacements:
            if text.count(before) != 1:
                raise ValueError(f"{self.id}: {before!r} occurs {text.count(before)} times")
            text = text.replace(before, after)
        return text

    def apply(self, root: Path) -> None:
        path = root / self.path
        path.write_text(self.new_text(path.read_text()))


def bug(klass: str, target: str, description: str, *pairs: tuple[str, str], path: str = "") -> Edit:
    return Edit("bug", klass, (target,), path or calc_path(target), description, pairs)


def refactor(
    klass: str, target: str, description: str, *pairs: tuple[str, str], path: str = ""
) -> Edit:
    return Edit("refactor", klass, (target,), path or calc_path(target), description, pairs)


def calc_path(target: str) -> str:
    package = LABELS[target].split(":")[0][2:]
    return f"calculations/{package}/{target}.py"


def cli(root: Path, *args: str) -> tuple[int, str]:
    """``btbuild --workspace root ARGS`` in this process; returns (exit code, stdout + stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--workspace", str(root), *args])
    return code, out.getvalue() + err.getvalue()


def git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), "-c", "user.email=c@example.com", "-c", "user.name=c", *args],
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout


def window() -> list[str]:
    return [(FIRST + timedelta(days=n)).isoformat() for n in range((LAST - FIRST).days + 1)]


def build_args(labels: list[str], *extra: str) -> list[str]:
    return ["build", *labels, "--from", FIRST.isoformat(), "--date", LAST.isoformat(), *extra]


def make_base(folder: Path, patterns: tuple[str, ...] = ("//...",)) -> Path:
    """The corpus in a new git repository with its data, ``patterns`` built over the window."""
    shutil.copytree(TEMPLATE, folder)
    write_data(folder, LAST)
    (folder / ".gitignore").write_text(".btbuild/\n__pycache__/\n")
    git(folder, "init", "-q")
    git(folder, "add", ".")
    git(folder, "commit", "-q", "-m", "corpus")
    code, text = cli(folder, *build_args(list(patterns)))
    if code != 0:
        raise AssertionError(f"the corpus does not build:\n{text[-3000:]}")
    return folder


def stored(root: Path, targets: tuple[str, ...]) -> dict[tuple[str, str], Any]:
    session = Session(root)
    try:
        return {
            (target, day): session.backend.read_result(target, day)
            for target in targets
            for day in window()
        }
    finally:
        session.close()


def same(a: Any, b: Any) -> bool:
    """Equal JSON values, exactly as stored: a float's last bit counts (a clean build of the
    new code stores those bytes), ``1`` is not ``1.0`` nor ``True``; key order is ignored."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def first_difference(old: dict[tuple[str, str], Any], new: dict[tuple[str, str], Any]) -> str:
    """Where the new code's results differ from the old ones ("" when nowhere)."""
    for key, before in old.items():
        after = new.get(key)
        if isinstance(before, dict) and isinstance(after, dict) and before.keys() == after.keys():
            for user in before:
                if not same(before[user], after[user]):
                    return f"{key[0]} {key[1]} {user}: {before[user]!r} -> {after[user]!r}"
        elif not same(before, after):
            return f"{key[0]} {key[1]}: {str(before)[:200]} -> {str(after)[:200]}"
    return ""


@dataclass(frozen=True)
class Outcome:
    edit: Edit
    verify_code: int
    verdicts: tuple[str, ...]  # verify's verdicts of the edited targets
    cells: dict[str, tuple[tuple[str, str], ...]]  # target -> (status, reason) of its cells
    differences: dict[str, str]  # the oracle: target -> where its real results differ ("": nowhere)
    log: str
    seconds: tuple[float, float] = (0.0, 0.0)  # verify, build
    details: tuple[str, ...] = ()  # distinct details of the decided cells (e.g. why unproven)

    @property
    def difference(self) -> str:
        return next((d for d in self.differences.values() if d), "")

    @property
    def changed(self) -> bool:
        return bool(self.difference)

    def cosmetic_cells(self, target: str) -> int:
        return sum(1 for _status, reason in self.cells[target] if reason == "cosmetic")

    @property
    def proven(self) -> bool:
        """Every decided cell was skipped as cosmetic (and some were)."""
        decided = [
            cell
            for cells in self.cells.values()
            for cell in cells
            if cell[0] not in ("impossible", "blocked")
        ]
        return bool(decided) and all(reason == "cosmetic" for _, reason in decided)

    @property
    def unchanged_code(self) -> bool:
        """Every decided cell was up to date: the edit did not even change the code hash."""
        decided = [c for cells in self.cells.values() for c in cells if c[0] == "skipped"]
        return bool(decided) and all(reason == "up_to_date" for _, reason in decided)

    @property
    def build_missed(self) -> bool:
        """A target whose real results changed had cells skipped as cosmetic."""
        return any(self.differences[t] and self.cosmetic_cells(t) for t in self.edit.targets)

    @property
    def verify_missed(self) -> bool:
        return self.changed and self.verify_code == 0

    @property
    def missed(self) -> bool:
        return self.build_missed or self.verify_missed

    def summary(self) -> str:
        cells: dict[str, int] = {}
        for status, reason in (c for target in self.cells.values() for c in target):
            cells[f"{status}/{reason}"] = cells.get(f"{status}/{reason}", 0) + 1
        return (
            f"{self.edit.kind} {self.edit.id} [{self.edit.klass}]: verify exit {self.verify_code} "
            f"{'/'.join(self.verdicts) or '-'}; build {cells}; oracle "
            f"{self.difference or 'no difference on real data'}"
            + (f"; detail: {' | '.join(self.details)[:300]}" if self.details else "")
        )


_BASE_RESULTS: dict[tuple[Path, tuple[str, ...]], dict[tuple[str, str], Any]] = {}


def run_case(base: Path, edit: Edit, work: Path) -> Outcome:
    """verify, build and judge one edit on a copy of ``base`` (``work`` must not exist)."""
    key = (base, edit.targets)
    if key not in _BASE_RESULTS:
        _BASE_RESULTS[key] = stored(base, edit.targets)
    # another case's process may be reading the base's cache (``stored``): its SQLite side
    # files come and go mid-copy (the base was closed, so checkpointed: they hold nothing)
    side_files = shutil.ignore_patterns("*.db-shm", "*.db-wal")
    shutil.copytree(base, work, symlinks=True, ignore=side_files)
    edit.apply(work)
    git(work, "commit", "-q", "-a", "-m", edit.id)
    labels = [LABELS[t] for t in edit.targets]
    started = time.perf_counter()
    verify_code, verify_text = cli(
        work, "verify", "--base", "HEAD~1", "--search-seconds", SEARCH_SECONDS, "--format", "json"
    )
    verdicts = _verdicts(verify_text, labels)
    verified = time.perf_counter()
    code, text = cli(work, *build_args(labels, "--format", "json"))
    seconds = (verified - started, time.perf_counter() - verified)
    cells = {t: tuple(_cells(text, [LABELS[t]])) for t in edit.targets}
    log = f"verify:\n{verify_text[-4000:]}\nbuild ({code}):\n{text[-2000:]}"
    if any(reason == "cosmetic" for target in cells.values() for _, reason in target):
        cli(work, *build_args(labels, "--force"))
    now = stored(work, edit.targets)
    differences = {}
    for target in edit.targets:
        old = {k: v for k, v in _BASE_RESULTS[key].items() if k[0] == target}
        differences[target] = first_difference(old, now)
        failed = [
            c
            for c in cells[target]
            if c[0] in ("failed", "dead_letter") or c[1] == "waiting_for_deps"
        ]
        if not differences[target] and failed:
            differences[target] = f"{target}: the new code fails on real data: {failed[0]}"
    details = tuple(sorted(set(_details(text, labels))))
    return Outcome(edit, verify_code, verdicts, cells, differences, log, seconds, details)


def _json(text: str) -> Any:
    start = text.find("{")
    try:
        return json.loads(text[start:]) if start >= 0 else None
    except json.JSONDecodeError:
        decoded, _ = json.JSONDecoder().raw_decode(text[start:])
        return decoded


def _verdicts(text: str, labels: list[str]) -> tuple[str, ...]:
    try:
        report = _json(text)
    except (json.JSONDecodeError, ValueError):
        return ("unreadable",)
    if not isinstance(report, dict):
        return ("error",)
    return tuple(
        str(change.get("verdict"))
        for change in report.get("changed", [])
        if change.get("label") in labels
    )


def _details(text: str, labels: list[str]) -> list[str]:
    try:
        report = _json(text)
    except (json.JSONDecodeError, ValueError):
        return []
    if not isinstance(report, dict):
        return []
    return [
        str(cell["detail"])
        for cell in report.get("cells", [])
        if cell["label"] in labels and cell.get("detail") and cell["status"] in ("ran", "skipped")
    ]


def _cells(text: str, labels: list[str]) -> list[tuple[str, str]]:
    try:
        report = _json(text)
    except (json.JSONDecodeError, ValueError):
        return [("error", text[-300:])]
    if not isinstance(report, dict):
        return [("error", text[-300:])]
    return [
        (str(cell["status"]), str(cell["reason"]))
        for cell in report.get("cells", [])
        if cell["label"] in labels
    ]
