"""The one place that wires the stages together for a command.

A :class:`Session` loads each stage lazily and at most once: commands that only need the graph
(``query``) never open the cache or import plugins.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cached_property
from pathlib import Path

from btbuild.graph.graph import Graph, graph_of
from btbuild.graph.query import resolve_patterns
from btbuild.workspace.config import find_workspace_root, load_workspace
from btbuild.workspace.model import Workspace


class Session:
    def __init__(self, root: Path, *, product_lines: Iterable[str] = ()):
        self.root = root
        self.product_lines = tuple(product_lines)

    @classmethod
    def discover(cls, workspace: str | Path | None = None, **options: object) -> Session:
        start = Path(workspace) if workspace is not None else Path.cwd()
        if workspace is not None and not start.is_dir():
            from btbuild.errors import ConfigError

            raise ConfigError(f"--workspace {workspace}: no such folder")
        return cls(find_workspace_root(start), **options)  # type: ignore[arg-type]

    @cached_property
    def workspace(self) -> Workspace:
        return load_workspace(self.root)

    @cached_property
    def graph(self) -> Graph:
        graph = graph_of(self.workspace)
        return graph.sliced(self.product_lines) if self.product_lines else graph

    def match(self, patterns: Iterable[str]) -> set[str]:
        """Labels matched by ``patterns`` (errors name the pattern that matched nothing)."""
        return resolve_patterns(self.graph, patterns)
