"""Load calculation code from a workspace: ``entry = "module:Name"``.

Modules are executed from their files under private names, with the package folder and the
workspace root on the import path (the same resolution rule the layer hash uses, see
:func:`btbuild.hashing.imports.resolve_module`).

Each calculation module imports its **own copies** of the workspace's helper modules: they
are dropped from ``sys.modules`` before each load. Otherwise a calculation changing
a shared helper at import (``helpers.RATE = 2``, a registry filled by ``@register``) changed
what every calculation loaded after it in the same process computed: a target's results
depended on which targets the process had loaded before (alone or in a full build, fused or
not, ``--jobs 1`` or 2, a long-lived worker), while its hashes cover its own imports only
(stale or wrong results, exit 0). Limit: an import inside a function, run at call time, gets
the copies of the calculation loaded last in the process (the import path of a load is gone
by then); a helper that another calculation changes at import is seen there. Dropping them
also means a test or a long-lived worker never runs stale helper code after a file changed.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from btbuild.errors import CalculationError
from btbuild.execution.bytecode import VerifiedLoader, compiled_digest, install, is_workspace_file
from btbuild.execution.guard import describe, raised_by_calc
from btbuild.execution.module_state import Shape, changed, state_of
from btbuild.hashing.digest import hash_bytes
from btbuild.hashing.layers import hashed_digest
from btbuild.workspace.model import Target, Workspace

Process = Callable[[Any], Any]

# names of modules imported by calculation loads in this process (calculations and the
# workspace helpers they pulled in), forgotten when the next loader starts
_IMPORTED: set[str] = set()


def _is_workspace_module(module: object, root: str) -> bool:
    """A helper module of the workspace (not btbuild's, not an installed package that happens
    to live in a virtual environment under the workspace root)."""
    return is_workspace_file(getattr(module, "__file__", None) or "", root)


def drop_helper_modules(root: str) -> None:
    """Drop the workspace's helper modules from ``sys.modules`` (calculation modules, under
    their private ``btbuild_calc_`` names, stay): the next import executes them afresh."""
    for name, module in list(sys.modules.items()):
        if not name.startswith("btbuild") and _is_workspace_module(module, root):
            del sys.modules[name]


def _edited_since_hashed(file: str | None) -> bool:
    """A module file whose bytes, as compiled (btbuild/execution/bytecode.py), are not those
    this process hashed (a file it never hashed, e.g. a snapshot of old code, is not checked)."""
    if file is None:
        return False
    hashed = hashed_digest(file)
    if hashed is None:
        return False
    compiled = compiled_digest(file)
    if compiled is not None:
        return compiled != hashed
    try:
        return hash_bytes(Path(file).read_bytes()) != hashed
    except OSError:
        return True


class SourceHook(Protocol):
    """Loads some files differently (the simulation's probes of conditions inside changed
    lines, :mod:`btbuild.sim.probes`): a loader for the entry file, and the imports of a
    block."""

    def loader(self, name: str, path: Path) -> importlib.abc.Loader | None: ...

    def importing(self) -> AbstractContextManager[None]: ...


def changed_variables(before: dict[str, str]) -> list[str]:
    """The environment variables whose value differs now from ``before`` (sorted)."""
    if os.environ == before:
        return []
    names = before.keys() | os.environ.keys()
    return sorted(name for name in names if before.get(name) != os.environ.get(name))


def _restore_environ(environ: dict[str, str], target: Target, path: Path, shown: str) -> None:
    """Environment variables are inputs of the calculations reading them, hashed before any
    code runs (btbuild/hashing/runtime.py): one changed by an import would be read by the
    calculations loaded after it in this process and not by the others. Put back, refused."""
    names = changed_variables(environ)
    if not names:
        return
    os.environ.clear()
    os.environ.update(environ)
    raise CalculationError(
        f"{target.label}: importing {shown} changed environment variables ({', '.join(names)}): "
        "calculations loaded after it in this process would read them, others not; set them "
        "before the build instead"
    )


class CalculationLoader:
    def __init__(self, workspace: Workspace, hook: SourceHook | None = None):
        self.workspace = workspace
        self.hook = hook
        self._modules: dict[Path, ModuleType] = {}
        # per entry file: the module and the helper copies it imported (module_state.py)
        self._owned: dict[Path, list[ModuleType]] = {}
        self._baselines: dict[str, dict[str, Shape]] = {}  # per target name
        self._entries: dict[str, Path] = {}  # target name -> its entry file (for renew)
        self._bytecode = install(workspace.root)  # never a stale __pycache__ (bytecode.py)
        self._forget_workspace_modules()

    def _forget_workspace_modules(self) -> None:
        """Drop the modules earlier loaders imported (calculations and their helpers)."""
        while _IMPORTED:
            sys.modules.pop(_IMPORTED.pop(), None)

    def module(self, target: Target) -> ModuleType:
        path = target.entry_file
        if path in self._modules:
            return self._modules[path]
        module, self._owned[path] = self._load(target, "")
        self._modules[path] = module
        return module

    def renew(self, target: Target) -> None:
        """The next :meth:`factory` of ``target`` imports its module and helpers afresh (and
        the first cell on them sets its state baseline again): a cell that ran on module
        state earlier cells left runs again as the first cell of a fresh process would."""
        path = target.entry_file  # every target of that module gets the fresh import
        self._modules.pop(path, None)
        self._owned.pop(path, None)
        for key in [k for k in self._baselines if self._entries.get(k.split()[0]) == path]:
            del self._baselines[key]

    def fresh_factory(self, target: Target) -> Callable[[], Process]:
        """:meth:`factory` over a private fresh copy of the module and its helpers (kept
        nowhere): what the calculation computes with the state of a fresh import."""
        module, _helpers = self._load(target, "_fresh")
        return self._factory_of(target, module)

    def _load(self, target: Target, suffix: str) -> tuple[ModuleType, list[ModuleType]]:
        """Import the entry module (under a private name) with its own copies of the
        workspace helpers; (the module, it and those helpers)."""
        path = target.entry_file
        package = target.package.replace("/", "_") or "_root"
        name = f"btbuild_calc_{package}_{path.stem}{suffix}"
        custom = self.hook.loader(name, path) if self.hook is not None else None
        if custom is None:
            custom = VerifiedLoader(name, str(path), self._bytecode)
        spec = importlib.util.spec_from_file_location(name, path, loader=custom)
        if spec is None or spec.loader is None:
            raise CalculationError(f"{target.label}: cannot load {self._shown(path)}")
        module = importlib.util.module_from_spec(spec)
        root = str(self.workspace.root)
        extra = [str(path.parent), root]
        drop_helper_modules(root)  # this calculation imports its own copies of the helpers
        sys.path[:0] = extra
        sys.modules[name] = module
        before = set(sys.modules)
        environ = dict(os.environ)
        try:
            with self.hook.importing() if self.hook is not None else nullcontext():
                spec.loader.exec_module(module)
        except BaseException as exc:
            sys.modules.pop(name, None)
            if not raised_by_calc(exc):
                raise
            raise CalculationError(
                f"{target.label}: importing {self._shown(path)} failed: {describe(exc)}"
            ) from None
        finally:
            for entry in extra:
                if entry in sys.path:
                    sys.path.remove(entry)
            _IMPORTED.add(name)
            helpers = sorted(
                added
                for added in set(sys.modules) - before
                if _is_workspace_module(sys.modules[added], root)
                and not added.startswith("btbuild")
            )
            _IMPORTED.update(helpers)
            _restore_environ(environ, target, path, self._shown(path))
        owned = [module, *(sys.modules[helper] for helper in helpers)]
        edited = [m for m in owned if _edited_since_hashed(getattr(m, "__file__", None))]
        if edited:
            shown = ", ".join(self._shown(Path(m.__file__ or "?")) for m in edited)
            raise CalculationError(
                f"{target.label}: {shown} changed after the build hashed it (edited while the "
                "build ran?): its cells would be stored under the old code's key; run the "
                "build again"
            )
        return module, owned

    def state_problem(self, target: Target, seq: int = 0) -> str | None:
        """Why ``target``'s cell cannot be trusted as computed: its code changed module-level
        state since the first cell this process committed for it (``seq`` 0), or between two
        users of a cell whose inputs are checked (``seq``: the user's place in the pass, from
        1); see btbuild/execution/module_state.py. The caller decides by computing again on
        a fresh import (btbuild/execution/fresh.py)."""
        owned = self._owned.get(target.entry_file)
        if owned is None:
            return None
        self._entries[target.name] = target.entry_file
        state = state_of(owned)
        if seq:
            key, between = f"{target.name} users", "users of a cell"
            baseline = self._baselines.get(key) if seq > 1 else None
            self._baselines[key] = state
            if baseline is None:
                return None
        else:
            key, between = target.name, "cells in this process"
            baseline = self._baselines.setdefault(key, state)
        names = changed(baseline, state)
        if not names:
            return None
        files = {module.__name__: self._shown(Path(module.__file__ or "?")) for module in owned}
        module, _, name = names[0].rpartition(".")
        return (
            f"{target.label}: its code changed module-level state between {between} "
            f"({files.get(module, module)}: {name}): its results would depend on which "
            f"{between.split()[0]} the process computed before; keep such state on the instance "
            "(one per cell) or carry it in the result (ctx.previous)"
        )

    def factory(self, target: Target) -> Callable[[], Process]:
        """A callable making one ``process(ctx)`` per cell (a fresh instance for classes)."""
        return self._factory_of(target, self.module(target))

    def _factory_of(self, target: Target, module: ModuleType) -> Callable[[], Process]:
        entry = getattr(module, target.entry_attr, None)
        if entry is None:
            raise CalculationError(
                f'{target.label}: {self._shown(target.entry_file)} has no {target.entry_attr!r} (entry = "{target.entry_file.stem}:{target.entry_attr}")'
            )
        if isinstance(entry, type):
            if not callable(getattr(entry, "process", None)):
                raise CalculationError(
                    f"{target.label}: class {target.entry_attr} has no process(self, ctx) method"
                )

            def make() -> Process:
                try:
                    instance = entry()
                except BaseException as exc:
                    if not raised_by_calc(exc):
                        raise
                    raise CalculationError(
                        f"{target.label}: {target.entry_attr}() failed: {describe(exc)}"
                    ) from None
                process: Callable[[Any], Any] = instance.process
                return process

            return make
        if callable(entry):
            return lambda: entry
        raise CalculationError(
            f"{target.label}: {target.entry_attr} is neither a class nor a function"
        )

    def _shown(self, path: Path) -> str:
        try:
            return path.relative_to(self.workspace.root).as_posix()
        except ValueError:
            return str(path)
