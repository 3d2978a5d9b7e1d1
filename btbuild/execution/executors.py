"""Executors: how a build runs the groups its scheduler decided.

An executor is registered through the ``btbuild_executors`` hook (see
btbuild/plugins/hookspecs.py) and chosen with ``btbuild build --executor NAME``. The built-in
ones are registered the same way (btbuild/execution/plugin.py): ``local`` (this machine:
inline, or ``--jobs N`` worker processes) and ``pubsub`` (``btbuild worker`` processes).

The scheduler stays in the build's process and decides every cell; an executor only runs
:class:`~btbuild.execution.tasks.GroupTask` values and returns their outcomes. Whatever runs
a group calls :func:`btbuild.execution.runner.run_group` in an
:class:`~btbuild.execution.environment.Environment` (made once per process with
:meth:`Environment.of`), which takes the leases, commits with compare-and-set on the dep
hashes and gives cells back on interruption: the concurrency guarantees hold whatever runs it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from btbuild.errors import PluginError, UsageError

if TYPE_CHECKING:  # registering the executors (every plugin load) imports nothing heavy
    from btbuild.execution.dispatch import Submit
    from btbuild.execution.report import BuildRequest
    from btbuild.execution.setup import ExecutionContext
    from btbuild.execution.tasks import GroupTask
    from btbuild.plugins.manager import Plugins
    from btbuild.storage.base import Backend
    from btbuild.workspace.model import Workspace

DEFAULT_EXECUTOR = "local"


@dataclass(frozen=True)
class ExecutorRun:
    """One build as its executor sees it."""

    context: ExecutionContext
    run_id: str  # this build's run id (the run log's ``<run id>/<attempt>``)
    jobs: int  # --jobs
    # tasks whose worker process died once: run each alone if you can (a live list: the
    # scheduler adds to it while the build runs)
    retried: Sequence[GroupTask]


class Executor(ABC):
    """Runs a build's groups: subclass it, set ``name`` and ``description``, implement
    :meth:`open`, and return an instance from a ``btbuild_executors`` hook."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""  # one line, for ``btbuild build --help`` and errors

    def check(self, workspace: Workspace, backend: Backend, request: BuildRequest) -> None:
        """Before anything is planned: raise a one-line :class:`~btbuild.errors.BtbuildError`
        when this executor cannot run the build (missing settings, resources, credentials).
        Nothing to check by default."""
        return None

    @abstractmethod
    def open(self, run: ExecutorRun) -> AbstractContextManager[Submit] | None:
        """A context manager giving ``submit(group) -> Future[list[CellOutcome]]`` for the
        build's groups (closed when the build ends: stop workers there), or None to run the
        groups inline in the build's process, one at a time. A future that raises
        :class:`concurrent.futures.BrokenExecutor` means the process running the group died:
        the scheduler retries its cells once, each alone (see ``run.retried``)."""


def registered_executors(plugins: Plugins) -> dict[str, Executor]:
    """Every executor the ``btbuild_executors`` hook provides, by name."""
    found: dict[str, Executor] = {}
    owner: dict[str, str] = {}
    for plugin, result in plugins.call_each("btbuild_executors"):
        for executor in [] if result is None else list(result):
            if not isinstance(executor, Executor) or not executor.name:
                raise PluginError(
                    f"plugin {plugin!r}: btbuild_executors must return Executor instances "
                    f"with a name, got {executor!r}"
                )
            if executor.name in found:
                raise PluginError(
                    f"executor {executor.name!r} is provided by two plugins: "
                    f"{owner[executor.name]!r} and {plugin!r}"
                )
            owner[executor.name], found[executor.name] = plugin, executor
    return found


def executor_named(plugins: Plugins, name: str) -> Executor:
    """The executor ``--executor name`` selects (a usage error listing the known ones)."""
    known = registered_executors(plugins)
    if name not in known:
        choices = ", ".join(
            f"{n} ({e.description})" if e.description else n for n, e in known.items()
        )
        raise UsageError(f"--executor {name!r} is not a registered executor; known: {choices}")
    return known[name]
