"""Run-time reads of calculation code as inputs of its ``infra`` hash.

btbuild/hashing/reads.py finds them in each source file; here they become ``infra`` entries
of every target whose entry file or layer files read them, like the data files the code
names (btbuild/hashing/datafiles.py). A change to any of them re-runs exactly those targets'
cells (``infra_changed``) and is never judged cosmetic.

* ``env:NAME``: the digest of the variable's value in the hashing process's environment (an
  unset variable is a value of its own); values themselves are never stored or shown.
* ``env:*``: code reading the environment by a computed name (``os.environ[name]``) or as a
  whole (``dict(os.environ)``) may read any variable, so the whole environment is an input,
  except the variables in :data:`VOLATILE` (the shell's and the terminal's bookkeeping, test
  runners' and btbuild's own knobs, which no calculation should compute with). Refusing to
  prove such code cosmetic would not be enough: an unchanged code with a changed variable
  would still be skipped.
* ``clock:today``: code calling the clock (``date.today()``, ``datetime.now()``,
  ``time.time()``) computes something else on another day whatever its inputs: today's date
  (of the hashing process) is an input, so its cells re-run once a day. Within a day the
  time of day still changes (documented: use ``ctx.date``).
* ``docs:<path>``: when a file of the target reads docstrings (``__doc__``,
  ``inspect.getdoc``), the docstrings of every file of the target (the normalizer drops them
  from the code hash; the code may read another module's).
* ``source:<path>``: when a file of the target reads source text or line numbers
  (``inspect.getsource``, tracebacks, ``open(__file__)``), the raw bytes of every file of the
  target: a comment or a blank line changes what such code computes.

The Pub/Sub worker and every ``--jobs`` process compute these from their own environment:
a process whose value differs has another static hash, and refuses the tasks planned with
the dispatcher's (btbuild/execution/start.py).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from datetime import date
from pathlib import Path

from btbuild.hashing.datafiles import DataFiles
from btbuild.hashing.digest import hash_json
from btbuild.hashing.layers import FactsReader, relative_posix

UNSET = "unset"
# never part of ``env:*``: per-shell, per-terminal and per-test-phase bookkeeping, and
# btbuild's own knobs (a literal read of one of them is still tracked under its name)
VOLATILE = frozenset(
    {
        "_",
        "COLUMNS",
        "COLORTERM",
        "DBUS_SESSION_BUS_ADDRESS",
        "DISPLAY",
        "HISTCONTROL",
        "HISTFILE",
        "HISTSIZE",
        "INVOCATION_ID",
        "JOURNAL_STREAM",
        "LINES",
        "LS_COLORS",
        "MAIL",
        "OLDPWD",
        "PROMPT_COMMAND",
        "PS1",
        "PS2",
        "PWD",
        "PYTEST_CURRENT_TEST",
        "SHLVL",
        "STY",
        "TERM",
        "TMUX",
        "TMUX_PANE",
        "WINDOW",
        "WINDOWID",
    }
)
VOLATILE_PREFIXES = ("BTBUILD_", "COV_CORE_", "PYTEST_XDIST_", "SSH_", "TERM_", "XDG_")


def value_digest(value: str | None) -> str:
    """A variable's value as an input: never the value itself (it may be a secret)."""
    if value is None:
        return UNSET
    return hashlib.blake2b(value.encode("utf-8", "surrogateescape"), digest_size=16).hexdigest()


def volatile(name: str) -> bool:
    return name in VOLATILE or name.startswith(VOLATILE_PREFIXES)


def environment_digest(environ: Mapping[str, str]) -> str:
    """``env:*``: every variable of ``environ`` but the :func:`volatile` ones."""
    return hash_json(
        sorted((name, value_digest(value)) for name, value in environ.items() if not volatile(name))
    )


class RuntimeInputs:
    """The run-time reads of a target's source files, as ``infra`` entries."""

    def __init__(
        self,
        root: Path,
        data: DataFiles,
        environ: Mapping[str, str] | None = None,
        today: str | None = None,
    ) -> None:
        self.root = root
        self.data = data
        self.environ = os.environ if environ is None else environ
        self.today = date.today().isoformat() if today is None else today
        self._whole: str | None = None

    def inputs(self, sources: tuple[Path, ...], reader: FactsReader) -> dict[str, str]:
        """``{"env:NAME" | "env:*" | "clock:today" | "docs:<path>" | "source:<path>": digest}``,
        sorted."""
        found: dict[str, str] = {}
        reads: set[str] = set()
        for source in sources:
            facts = reader(source)
            reads.update(facts.reads)
            for name in facts.env:
                found[f"env:{name}"] = (
                    self._whole_environment()
                    if name == "*"
                    else value_digest(self.environ.get(name))
                )
        if "clock" in reads:
            found["clock:today"] = self.today
        for source in sources:
            path = relative_posix(source, self.root)
            if "docs" in reads:
                found[f"docs:{path}"] = reader(source).docs or "none"
            if "source" in reads:
                found[f"source:{path}"] = self.data.digest(source)
        return dict(sorted(found.items()))

    def _whole_environment(self) -> str:
        if self._whole is None:
            self._whole = environment_digest(self.environ)
        return self._whole
