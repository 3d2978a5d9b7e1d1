"""What execution needs from the rest of btbuild, as one frozen value.

The wiring layer (:mod:`btbuild.session`) loads the workspace, graph, plugins, hashes and the
cache, and hands them to execution as an :class:`ExecutionContext`: execution never imports
the session (it sits below it). A process that runs cells for a build in another process
(a ``--jobs`` worker, a ``btbuild worker``) builds its own context from the workspace root
through ``worker_setup``, a ``"module:function"`` the wiring layer names.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from btbuild.errors import UsageError
from btbuild.graph.graph import Graph
from btbuild.graph.query import resolve_patterns
from btbuild.plugins.manager import Plugins
from btbuild.storage.base import Backend
from btbuild.workspace.model import Workspace

if TYPE_CHECKING:
    from btbuild.hashing import TargetHashes


@dataclass(frozen=True)
class ExecutionContext:
    """The loaded workspace as execution sees it (read-only; the backend is shared)."""

    workspace: Workspace
    graph: Graph  # sliced to ``product_lines`` when they are given
    hashes: Mapping[str, TargetHashes]
    plugins: Plugins
    backend: Backend
    product_lines: tuple[str, ...] = ()
    current_package: str | None = None  # where relative patterns (``:name``) are read from
    # "module:function" called as function(root, product_lines) -> ExecutionContext in a
    # worker process; None: this context cannot start worker processes
    worker_setup: str | None = None

    @property
    def root(self) -> Path:
        return self.workspace.root

    def match(self, patterns: Iterable[str]) -> set[str]:
        """Labels matched by ``patterns`` (errors name the pattern that matched nothing)."""
        return resolve_patterns(self.graph, patterns, self.current_package)

    def static_hashes(self) -> dict[str, str]:
        """Target name -> static hash of the code this process would run."""
        return {name: hashes.static for name, hashes in self.hashes.items()}


class ExecutionSource(Protocol):
    """Anything that can make an :class:`ExecutionContext` (a session)."""

    @property
    def workspace(self) -> Workspace: ...

    @property
    def backend(self) -> Backend: ...

    @property
    def graph(self) -> Graph: ...

    def match(self, patterns: Iterable[str]) -> set[str]: ...

    def execution(self) -> ExecutionContext: ...


def context_of(source: ExecutionContext | ExecutionSource) -> ExecutionContext:
    return source if isinstance(source, ExecutionContext) else source.execution()


def worker_context(
    setup: str | None, root: str, product_lines: tuple[str, ...]
) -> ExecutionContext:
    """The context of a worker process, made by the wiring layer's ``setup`` function."""
    if setup is None:
        raise UsageError("this build cannot start worker processes (no worker set-up given)")
    module, _, function = setup.partition(":")
    context = getattr(importlib.import_module(module), function)(root, product_lines)
    if not isinstance(context, ExecutionContext):
        raise TypeError(f"{setup} returned {type(context).__name__}, not an ExecutionContext")
    return context
