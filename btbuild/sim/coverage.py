"""Coverage of the change: did the simulation run what changed, both ways?

Equal outputs only prove something about the code that ran. :func:`code_change` finds the
statements that differ between the old and the new code (per function, layers included);
this module traces the simulation of each version with coverage.py's branch coverage, used as
a library (``Coverage(data_file=None, branch=True, include=<changed files>)``: the C tracer,
restricted to the files that changed, nothing written to disk), and requires that

* every changed statement ran, in the version it belongs to, and
* every changed statement that coverage.py sees as a branch (``if``, ``while``, ``for``,
  ``match`` ...) took each of its exits.

* every condition inside a changed statement (``a if c else b``, ``and``/``or``, a
  comprehension's ``if``), which line coverage cannot see, was true and false in the
  coverage check's runs of its version (:mod:`btbuild.sim.probes`).

Otherwise :meth:`ChangeCoverage.reason` names the first gap (``unproven: branch at
calculations/x.py:12 never jumps to line 15``), and the change is not cosmetic: the cell
re-runs.

Why coverage.py and not a hand-rolled ``sys.settrace``: its C tracer is several times faster
than a Python trace function, it computes the possible arcs of a file statically (so "never
taken" is known without guessing), and it handles generators, ``try``/``finally`` and
``match`` exits correctly. The cost is measured by ``bench/bench_sim.py`` (coverage overhead).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from btbuild.sim.changes import CodeChange, VersionFiles, code_change
from btbuild.sim.probes import READ, Probes, describe, plain_classes
from btbuild.workspace.model import Target, Workspace

VERSIONS = ("old", "new")


class Tracer:
    """Branch coverage of some files, accumulated over any number of traced blocks."""

    def __init__(self, files: tuple[Path, ...]):
        self.files = tuple(dict.fromkeys(str(path.resolve()) for path in files))
        self._coverage: Any = None
        self._depth = 0

    def _make(self) -> Any:
        import coverage

        return coverage.Coverage(
            data_file=None, branch=True, config_file=False, include=list(self.files)
        )

    @contextmanager
    def tracing(self) -> Iterator[None]:
        """Trace the block (re-entrant: a nested block is part of the outer one)."""
        if not self.files:
            yield
            return
        if self._coverage is None:
            self._coverage = self._make()
        self._depth += 1
        if self._depth == 1:
            self._coverage.start()
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0:
                self._coverage.stop()

    def gaps(
        self, path: Path, lines: frozenset[int], run_only: frozenset[int] = frozenset()
    ) -> list[tuple[int, int | None]]:
        """``(line, None)`` for a required line that never ran, ``(line, destination)`` for a
        required branch exit never taken (not of ``run_only`` lines); sorted by line."""
        if not lines:
            return []
        if self._coverage is None:
            return [(line, None) for line in sorted(lines)]
        analysis = self._coverage._analyze(str(path.resolve()))
        executed = set(analysis.executed)
        statements = set(analysis.statements)
        missing_exits = analysis.missing_branch_arcs()
        found: list[tuple[int, int | None]] = []
        for line in sorted(lines):
            if line not in statements:
                continue  # not a statement coverage.py tracks (e.g. excluded)
            if line not in executed:
                found.append((line, None))
            elif line not in run_only:
                found.extend((line, exit_to) for exit_to in sorted(missing_exits.get(line, ())))
        return found


class ChangeCoverage:
    """The changed statements of one target and a tracer per version."""

    def __init__(self, change: CodeChange):
        self.change = change
        self.tracers = {version: Tracer(change.files(version)) for version in VERSIONS}
        # the conditions inside changed lines, recorded by the instrumented loads of each
        # version (set by the caller that loads them: ChangeTracing)
        self.probes = {
            version: Probes(self.direct(version), plain_classes(self.code(version).files))
            for version in VERSIONS
        }

    def code(self, version: str) -> VersionFiles:
        return self.change.new if version == "new" else self.change.old

    def lines(self, version: str) -> dict[Path, frozenset[int]]:
        return self.change.new_lines if version == "new" else self.change.old_lines

    def direct(self, version: str) -> dict[Path, frozenset[int]]:
        """The lines whose conditions inside the line must go both ways (not the readers
        of a changed value, which only have to run)."""
        return self.change.new_direct if version == "new" else self.change.old_direct

    @classmethod
    def between(
        cls, old: Target, old_workspace: Workspace, new: Target, new_workspace: Workspace
    ) -> ChangeCoverage:
        return cls(
            code_change(VersionFiles.of(old, old_workspace), VersionFiles.of(new, new_workspace))
        )

    @property
    def empty(self) -> bool:
        return self.change.empty

    def tracing(self, version: str) -> Any:
        return self.tracers[version].tracing()

    def gaps(self, version: str) -> list[tuple[Path, int, int | None]]:
        lines = self.lines(version)
        run_only = self.change.new_run if version == "new" else self.change.old_run
        tracer = self.tracers[version]
        return [
            (path, line, exit_to)
            for path, required in lines.items()
            for line, exit_to in tracer.gaps(path, required, run_only.get(path, frozenset()))
        ]

    def reason(self) -> str | None:
        """None when every changed statement ran and every changed branch went both ways in
        both versions; else ``"unproven: ..."`` naming the first gap (file:line)."""
        for version in ("new", "old"):
            files = self.change.new if version == "new" else self.change.old
            for path, line, exit_to in self.gaps(version):
                where = f"{files.shown(path)}:{line}"
                suffix = "" if version == "new" else " (old code)"
                if exit_to is None:
                    return f"unproven: changed line {where} never ran{suffix}"
                target = "leaves the function" if exit_to < 0 else f"jumps to line {exit_to}"
                return f"unproven: branch at {where} never {target}{suffix}"
        for version in ("new", "old"):
            files = self.change.new if version == "new" else self.change.old
            for path, key, outcome in self.probes[version].gaps(self.direct(version)):
                suffix = "" if version == "new" else " (old code)"
                if key[2] in READ:
                    return (
                        f"unproven: {describe(key)} of {files.shown(path)}:{key[0]} is never "
                        f"read{suffix} (the code reads other entries or bindings only)"
                    )
                return (
                    f"unproven: {describe(key)} of {files.shown(path)}:{key[0]} is never "
                    f"{str(outcome).lower()}{suffix} (a branch inside the line)"
                )
        return self.change.constants[0] if self.change.constants else None

    def missing(self) -> int:
        """How many gaps are left (both versions): what a targeted search drives down."""
        return sum(
            len(self.gaps(version)) + len(self.probes[version].gaps(self.direct(version)))
            for version in VERSIONS
        )


__all__ = ["ChangeCoverage", "Tracer"]
