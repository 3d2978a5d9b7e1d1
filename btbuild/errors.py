"""One error hierarchy for btbuild.

The CLI is the single boundary that turns these into one line on stderr and an exit code
(``--debug`` shows the traceback). Three kinds of failure are kept apart on purpose:

* :class:`UsageError` / :class:`WorkspaceError` — the user's input is wrong (exit 2);
* :class:`BuildFailed` — a build or check ran and did not succeed (exit 1);
* :class:`CalculationError` — user code failed for one item; it is *data* for the circuit
  breaker, not a crash of btbuild.

Anything else escaping to the CLI is a btbuild bug and is reported as such.
"""

from __future__ import annotations

from pathlib import Path


class BtbuildError(Exception):
    """Base of every error btbuild raises on purpose."""

    exit_code = 2


class UsageError(BtbuildError):
    """Bad command-line usage: an unknown option value, a malformed date or label."""


class WorkspaceError(BtbuildError):
    """The workspace is wrong: a BUILD.toml, a label, a dependency, a missing file.

    ``path`` and ``line`` say where the value came from; they are folded into the message so
    every report reads ``calculations/risk/BUILD.toml:12: ...``.
    """

    def __init__(self, message: str, *, path: Path | str | None = None, line: int | None = None):
        self.path = str(path) if path is not None else None
        self.line = line
        self.detail = message
        where = ""
        if self.path is not None:
            where = f"{self.path}:{line}: " if line else f"{self.path}: "
        super().__init__(f"{where}{message}")


class ConfigError(WorkspaceError):
    """A BUILD.toml key has the wrong type, an unknown name or a bad value."""


class LabelError(WorkspaceError):
    """A label or pattern does not parse, or names no target."""


class CycleError(WorkspaceError):
    """The dependency graph has one or more cycles; ``cycles`` holds each chain of labels."""

    def __init__(self, message: str, cycles: list[list[str]]):
        self.cycles = cycles
        super().__init__(message)


class QueryError(UsageError):
    """A ``btbuild query`` expression does not parse or names an unknown target."""

    def __init__(self, message: str, expression: str = "", column: int | None = None):
        self.expression = expression
        self.column = column
        if column is not None and expression:
            message = f"{message} at column {column + 1}: {expression!r}"
        super().__init__(message)


class StorageError(BtbuildError):
    """The cache cannot be opened or written (a corrupt *entry* is a miss, not this)."""

    exit_code = 1


class DamagedResult(StorageError):
    """A committed result does not match its record (a shard missing, tampered or truncated,
    an unreadable record): the cell is treated as missing and rebuilt, never read as None.
    ``target`` and ``date`` name the damaged cell."""

    def __init__(
        self,
        message: str,
        *,
        target: str | None = None,
        date: str | None = None,
        generation: str | None = None,
    ):
        self.target = target
        self.date = date
        self.generation = generation  # the damaged record's: a rebuilt one is never forgotten
        super().__init__(message)


class ResultMovedOn(DamagedResult):
    """A result a cell was planned with was replaced, since the plan, by another intact one
    (another builder committed it): nothing is damaged and nothing is forgotten; the cell is
    given back and planned again from the cache as it is now, like a commit whose deps moved."""


class CacheFileDamaged(StorageError):
    """The cache *file* is damaged below the level of records (SQLite reports a malformed
    page, or the file is no database any more): ``btbuild fsck --repair`` (and any build,
    once, on its own) moves it aside and salvages every record that still checks out.
    ``path`` names the file; ``file_id`` is its (device, inode) when it was found damaged,
    so that a repair started later does not repair a file another process already replaced."""

    def __init__(
        self,
        message: str,
        *,
        path: Path | str,
        file_id: tuple[int, int] | None = None,
        problem: str = "",
    ) -> None:
        self.path = Path(path)
        self.file_id = file_id
        self.problem = problem or message
        super().__init__(message)


class LeaseLost(StorageError):
    """Another builder took over a cell this process was working on."""


class SourceError(BtbuildError):
    """A root source failed to load or stream its data (not the calculation's fault); the
    message names the source and the date. ``stream`` names the user stream that failed
    (``root source 'accounts' on 2024-01-01``), when one did."""

    exit_code = 1

    def __init__(self, message: str, *, stream: str | None = None):
        self.stream = stream
        super().__init__(message)


class CloudSetupError(BtbuildError):
    """Google Cloud is not set up for this command: credentials, a project, an emulator
    variable, or a resource `btbuild deploy` creates is missing (exit 2: fix the setup)."""


class DepsMoved(StorageError):
    """A commit was refused: a cell it was computed from holds another result by now (another
    builder committed it since the plan). The cell is given back as it was; plan it again."""


class PluginError(BtbuildError):
    """A plugin cannot be loaded, or implements a hook btbuild does not define."""


class BuildFailed(BtbuildError):
    """A build or check ran and at least one cell failed or a check did not pass."""

    exit_code = 1


class CalculationError(BtbuildError):
    """User calculation code failed, or returned a value that is not JSON, for one item."""

    exit_code = 1


class ResultMissing(BtbuildError):
    """A reader asked for a stored result that is not there (never built, impossible, failed,
    or unreadable); the message says which and why."""

    exit_code = 1
