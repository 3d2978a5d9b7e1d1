"""The one place that wires the stages together for a command.

A :class:`Session` loads each stage lazily and at most once: commands that only need the graph
(``query``) never open the cache or import plugins.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from btbuild.errors import ConfigError, WorkspaceError
from btbuild.graph.graph import Graph, graph_of
from btbuild.graph.query import resolve_patterns
from btbuild.workspace.config import find_workspace_root, load_workspace
from btbuild.workspace.model import Workspace

if TYPE_CHECKING:  # imported when first needed (query needs no hashes, plugins or cache)
    from types import TracebackType

    from btbuild.execution.setup import ExecutionContext
    from btbuild.hashing import TargetHashes
    from btbuild.plugins.manager import Plugins
    from btbuild.storage.base import Backend


class Session:
    """The stages of one workspace, each loaded on first use. A context manager: leaving the
    ``with`` block closes the cache (``close``)."""

    def __init__(
        self,
        root: Path,
        *,
        product_lines: Iterable[str] = (),
        backend: Backend | None = None,
        cwd: Path | None = None,
    ):
        self.root = root
        self.product_lines = tuple(product_lines)
        self._backend = backend
        self.cwd = cwd  # where the command runs: relative patterns are read from its package

    @classmethod
    def discover(
        cls,
        workspace: str | Path | None = None,
        *,
        product_lines: Iterable[str] = (),
        backend: Backend | None = None,
        cwd: Path | None = None,
    ) -> Session:
        """The session of the workspace holding ``workspace`` (default: the current folder)."""
        start = Path(workspace) if workspace is not None else Path.cwd()
        if workspace is not None and not start.is_dir():
            raise ConfigError(f"--workspace {workspace}: no such folder")
        return cls(
            find_workspace_root(start),
            product_lines=product_lines,
            backend=backend,
            cwd=cwd if cwd is not None else Path.cwd(),
        )

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @cached_property
    def workspace(self) -> Workspace:
        return load_workspace(self.root)

    @cached_property
    def graph(self) -> Graph:
        graph = graph_of(self.workspace)
        return graph.sliced(self.product_lines) if self.product_lines else graph

    @cached_property
    def current_package(self) -> str | None:
        """The package of the folder the command runs in (relative patterns such as ``:all``
        and ``:name`` name its targets); None outside the packages folder."""
        if self.cwd is None:
            return None
        here = self.cwd.resolve()
        packages = self.workspace.packages_dir
        if here != packages and packages not in here.parents:
            return None
        relative = here.relative_to(packages).as_posix()
        return "" if relative == "." else relative

    def match(self, patterns: Iterable[str]) -> set[str]:
        """Labels matched by ``patterns`` (errors name the pattern that matched nothing)."""
        return resolve_patterns(self.graph, patterns, self.current_package)

    @cached_property
    def plugins(self) -> Plugins:
        from btbuild.plugins.manager import load_plugins

        ws = self.workspace
        plugins = load_plugins(ws.root, ws.plugins, ws.plugin_settings, ws.build_file)
        self._check_roots(plugins.root_sources())
        check_segments(ws, plugins)
        for target in ws.targets.values():  # a misspelled checks key fails now, not per cell
            plugins.check_overrides(target.label, target.checks, self._shown(target.build_file))
            if target.checks:  # ... and so does a bad value (validators refuse it)
                try:
                    plugins.validators(
                        target.label, target.kind, target.checks, self._shown(target.build_file)
                    )
                except WorkspaceError as exc:
                    raise ConfigError(
                        exc.detail, path=self._shown(target.build_file), line=target.line
                    ) from None
        self._check_entries()
        return plugins

    def _check_entries(self) -> None:
        """A workspace error now, not a failed cell later: an entry naming a function or class
        its module never mentions (a cheap text check; importing happens when a cell runs)."""
        texts: dict[Path, str] = {}
        for target in self.workspace.targets.values():
            path = target.entry_file
            if path not in texts:
                try:
                    texts[path] = path.read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError) as exc:
                    raise ConfigError(
                        f"{target.label}: cannot read its entry file {self._shown(path)}: {exc}",
                        path=self._shown(target.build_file),
                        line=target.line,
                    ) from None
            if not re.search(rf"\b{re.escape(target.entry_attr)}\b", texts[path]):
                raise ConfigError(
                    f"{target.label}: entry {path.stem}:{target.entry_attr}: "
                    f"{self._shown(path)} defines no {target.entry_attr!r}",
                    path=self._shown(target.build_file),
                    line=target.line,
                )

    def _shown(self, path: Path) -> Path:
        return path.relative_to(self.root) if path.is_relative_to(self.root) else path

    def _check_roots(self, sources: dict[str, Any]) -> None:
        import difflib

        for target in self.workspace.targets.values():
            for source in target.all_roots:
                if source not in sources:
                    close = difflib.get_close_matches(source, sources, n=1)
                    hint = (
                        f" (did you mean {close[0]!r}?)"
                        if close
                        else f"; known sources: {', '.join(sources) or 'none (add a source plugin to [workspace] plugins)'}"
                    )
                    raise ConfigError(
                        f"{target.label}: unknown root source {source!r}{hint}",
                        path=self._shown(target.build_file),
                        line=target.line,
                    )

    @cached_property
    def hashes(self) -> dict[str, TargetHashes]:
        from btbuild.hashing import HashCache, compute_hashes

        return compute_hashes(
            self.workspace,
            extra_infra=self.plugins.infra_inputs(),
            cache=HashCache.for_workspace(self.root),
            predicate_code=self.plugins.predicate_code(),
        )

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            self._backend = open_storage(self.workspace, self.plugins.storage_backends())
        return self._backend

    def execution(self) -> ExecutionContext:
        """What execution needs, loaded now (btbuild/execution never imports the session)."""
        from btbuild.execution.setup import ExecutionContext

        return ExecutionContext(
            workspace=self.workspace,
            graph=self.graph,
            hashes=self.hashes,
            plugins=self.plugins,
            backend=self.backend,
            product_lines=self.product_lines,
            current_package=self.current_package,
            worker_setup=f"{__name__}:execution_context",
        )

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
            self._backend = None


def execution_context(root: str, product_lines: tuple[str, ...]) -> ExecutionContext:
    """A worker process's :class:`ExecutionContext` (``--jobs`` workers; see
    :func:`btbuild.execution.setup.worker_context`)."""
    return Session(Path(root), product_lines=product_lines).execution()


def check_segments(workspace: Workspace, plugins: Plugins) -> None:
    """Every segment is on a user-scope source and its predicate exists (at load, not per cell)."""
    segments = workspace.segments.values()
    if not segments:
        return
    sources = plugins.root_sources()
    predicates = plugins.segment_predicates() if any(s.predicate for s in segments) else {}
    for segment in segments:
        source = sources.get(segment.source)
        if source is None or source.scope != "user":
            what = "is not a root source" if source is None else "is a date-scope source"
            raise ConfigError(
                f"segment {segment.name!r}: source {segment.source!r} {what}; a segment needs a user-scope source",
                path="BUILD.toml",
            )
        if segment.predicate is not None and segment.predicate not in predicates:
            known = ", ".join(sorted(predicates)) or "none"
            raise ConfigError(
                f"segment {segment.name!r}: no plugin provides predicate {segment.predicate!r} "
                f"(btbuild_segment_predicates; known: {known})",
                path="BUILD.toml",
            )


def open_storage(workspace: Workspace, backends: Mapping[str, Any] | None = None) -> Any:
    """The workspace's action cache, as ``[storage]`` configures it: the backend registered
    under its name (``btbuild_storage_backends``; ``backends`` defaults to the built-ins)
    validates its table and opens."""
    from btbuild.storage.registry import StorageTable, open_from_table

    if backends is None:
        from btbuild.storage.plugin import BUILTIN_BACKENDS

        backends = {spec.name: spec for spec in BUILTIN_BACKENDS}
    settings = workspace.storage
    table = StorageTable(
        backend=settings.backend,
        values=dict(settings.options),
        build_file=Path(settings.build_file),
        root=workspace.root,
        workspace=workspace.name,
        lines=dict(settings.lines),
    )
    return open_from_table(backends, table)
