"""Load and drive plugins: built-ins, then ``btbuild`` entry points, then workspace modules."""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import importlib.util
import inspect
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy
import xxhash

from btbuild.errors import BtbuildError, ConfigError, PluginError
from btbuild.execution.bytecode import VerifiedLoader, install
from btbuild.plugins import hookspecs
from btbuild.plugins.code import salt_fingerprints
from btbuild.plugins.config import PluginConfig
from btbuild.plugins.sources import RootSource, check_source
from btbuild.plugins.validators import ResultValidator
from btbuild.workspace.labels import DOTTED_RE

BUILTIN_PLUGINS: tuple[str, ...] = (
    "btbuild.plugins.builtin_checks",
    "btbuild.storage.plugin",
    "btbuild.execution.plugin",
)
ENTRY_POINT_GROUP = "btbuild"
_DOTTED = DOTTED_RE
_PLAIN_IMPL = {
    "wrapper": False,
    "hookwrapper": False,
    "optionalhook": False,
    "tryfirst": False,
    "trylast": False,
    "specname": None,
}


class _Manager(pluggy.PluginManager):
    """Takes every ``btbuild_*`` function as a hook implementation, marked or not (like pytest),
    so a misspelled hook name is reported instead of silently never called."""

    def parse_hookimpl_opts(self, plugin: Any, name: str) -> Any:
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is None and name.startswith("btbuild_"):
            method = getattr(plugin, name, None)
            if inspect.isroutine(method):
                return dict(_PLAIN_IMPL)
        return opts


def read_plugin_settings(build_file: Path) -> dict[str, dict[str, object]]:
    """The ``[plugin.<name>]`` tables of a root BUILD.toml (an empty dict when it has none)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib
    try:
        data = tomllib.loads(build_file.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read plugin settings: {exc}", path=build_file) from None
    tables = data.get("plugin", {})
    if not isinstance(tables, dict) or not all(isinstance(t, dict) for t in tables.values()):
        raise ConfigError("[plugin] must only hold tables like [plugin.market]", path=build_file)
    return tables


def load_plugins(
    workspace_root: Path,
    module_names: Sequence[str],
    settings: Mapping[str, Mapping[str, object]] | None = None,
    build_file: Path | None = None,
    *,
    entry_points: bool = True,
) -> Plugins:
    """Register built-ins, installed entry points and the workspace's plugin modules, check
    every hook implementation against the specs, then call ``btbuild_configure``.

    ``module_names`` is ``[workspace] plugins``: each name is first looked up as a
    workspace-relative file (``plugins.market`` -> ``<root>/plugins/market.py``), else imported
    as an installed module. ``settings`` is the ``[plugin.*]`` tables of ``build_file``.
    """
    root = Path(workspace_root)
    build_file = build_file if build_file is not None else root / "BUILD.toml"
    config = PluginConfig(root=root, build_file=build_file, settings=dict(settings or {}))
    pm = _Manager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    order: list[str] = []

    for module_name in BUILTIN_PLUGINS:
        _register(pm, importlib.import_module(module_name), module_name, build_file, order)
    if entry_points:
        for ep in _entry_points():
            if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
                continue
            try:
                plugin = ep.load()
            except BtbuildError:
                raise
            except Exception as exc:
                raise PluginError(
                    f"installed plugin {ep.name!r} (entry point {ep.value!r} in group {ENTRY_POINT_GROUP!r}) failed to load: {type(exc).__name__}: {exc}"
                ) from None
            _register(pm, plugin, ep.name, build_file, order)
    for module_name in module_names:
        module = _import_plugin_module(root, module_name, build_file)
        _register(pm, module, module_name, build_file, order)

    _check_hooks(pm, build_file)
    plugins = Plugins(pm, config, tuple(order))
    plugins.call_each("btbuild_configure")
    return plugins


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    seen: dict[str, importlib.metadata.EntryPoint] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        seen.setdefault(ep.name, ep)  # the first distribution on sys.path wins, like imports
    return [seen[name] for name in sorted(seen)]


def _import_plugin_module(root: Path, name: str, build_file: Path) -> ModuleType:
    if not isinstance(name, str) or not _DOTTED.match(name):
        raise PluginError(
            f"{build_file}: [workspace] plugins entry {name!r} is not a dotted module name like 'plugins.market'"
        )
    base = root.joinpath(*name.split("."))
    for candidate in (base.with_name(base.name + ".py"), base / "__init__.py"):
        if candidate.is_file():
            return _exec_workspace_file(root, name, candidate, build_file)
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
            rel = base.relative_to(root).as_posix()
            raise PluginError(
                f"{build_file}: plugin {name!r} not found: no {rel}.py in the workspace and no installed module {name!r}"
            ) from None
        raise PluginError(
            f"{build_file}: plugin {name!r} failed to import: ModuleNotFoundError: {exc}"
        ) from None
    except BtbuildError:
        raise
    except Exception as exc:
        raise PluginError(
            f"{build_file}: plugin {name!r} failed to import: {type(exc).__name__}: {exc}"
        ) from None


def _exec_workspace_file(root: Path, name: str, path: Path, build_file: Path) -> ModuleType:
    # A private module name per workspace, so two workspaces in one process (tests, tools)
    # never share or clobber each other's plugin modules.
    digest = xxhash.xxh3_64_hexdigest(str(root.resolve()).encode())
    private = f"_btbuild_workspace_{digest}.{name}"
    # compiled from the bytes on disk, never a stale __pycache__ (btbuild/execution/bytecode.py)
    loader = VerifiedLoader(private, str(path), install(root))
    spec = importlib.util.spec_from_file_location(private, path, loader=loader)
    if spec is None or spec.loader is None:  # pragma: no cover - only for exotic files
        raise PluginError(f"{build_file}: plugin {name!r}: cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[private] = module
    try:
        spec.loader.exec_module(module)
    except BtbuildError:
        sys.modules.pop(private, None)
        raise
    except BaseException as exc:
        sys.modules.pop(private, None)
        if not isinstance(exc, Exception):
            raise
        rel = path.relative_to(root).as_posix()
        raise PluginError(
            f"{build_file}: plugin {name!r} ({rel}) failed to import: {type(exc).__name__}: {exc}"
        ) from None
    return module


def _register(
    pm: pluggy.PluginManager, plugin: object, name: str, build_file: Path, order: list[str]
) -> None:
    try:
        pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:
        detail = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        raise PluginError(f"{build_file}: plugin {name!r}: {detail}") from None
    except ValueError:
        other = pm.get_name(plugin) if pm.is_registered(plugin) else name
        raise PluginError(
            f"{build_file}: plugin {name!r} is registered twice (already loaded as {other!r}); list it once"
        ) from None
    order.append(name)


def _check_hooks(pm: pluggy.PluginManager, build_file: Path) -> None:
    known = sorted(n for n in vars(hookspecs) if n.startswith("btbuild_"))
    for hook_name, caller in sorted(vars(pm.hook).items()):
        for impl in caller.get_hookimpls():
            if caller.spec is None and not impl.optionalhook:
                close = difflib.get_close_matches(hook_name, known, n=1)
                hint = (
                    f"; did you mean {close[0]!r}?"
                    if close
                    else f"; known hooks: {', '.join(known)}"
                )
                raise PluginError(
                    f"{build_file}: plugin {impl.plugin_name!r} implements unknown hook {hook_name!r}{hint}"
                )
            if impl.wrapper or impl.hookwrapper:
                raise PluginError(
                    f"{build_file}: plugin {impl.plugin_name!r}: {hook_name} is a hook wrapper; btbuild hooks take plain implementations"
                )
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:  # pragma: no cover - _check_hooks covers it first
        raise PluginError(f"{build_file}: {exc}") from None


class Plugins:
    """The loaded plugins of one workspace and typed access to what their hooks return."""

    def __init__(self, pm: pluggy.PluginManager, config: PluginConfig, names: tuple[str, ...]):
        self.pm = pm
        self.config = config
        self.names = names  # registration order
        self._sources: dict[str, RootSource] | None = None
        self._infra: dict[str, str] | None = None
        self._options: dict[str, str] | None = None
        self._code: dict[str, str] = {}
        self._predicate_owners: dict[str, str] = {}

    def plugin_code(self, name: str) -> str:
        """What of plugin ``name``'s code counts in the keys of what it shapes
        (btbuild/plugins/code.py); computed once."""
        if name not in self._code:
            from btbuild.plugins.code import plugin_code

            self._code[name] = plugin_code(self.pm.get_plugin(name), self.config.root)
        return self._code[name]

    def call_each(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call every implementation of ``hook_name`` in registration order.

        Returns ``(plugin name, result)`` pairs, ``None`` results included, so callers can say
        which plugin returned what. An exception that is not a BtbuildError becomes a
        one-line PluginError naming the plugin and hook.
        """
        kwargs.setdefault("config", self.config)
        results = []
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            args = [kwargs[arg] for arg in impl.argnames]
            try:
                results.append((impl.plugin_name, impl.function(*args)))
            except BtbuildError:
                raise
            except Exception as exc:
                raise PluginError(
                    f"plugin {impl.plugin_name!r} failed in {hook_name}: {type(exc).__name__}: {exc}"
                ) from None
        return results

    def root_sources(self) -> dict[str, RootSource]:
        """Every root source by name (sorted by name); computed once."""
        if self._sources is None:
            owner: dict[str, str] = {}
            sources: dict[str, RootSource] = {}
            for plugin, result in self.call_each("btbuild_root_sources"):
                for source in _as_list(result, plugin, "btbuild_root_sources"):
                    check_source(source, plugin)
                    salt_fingerprints(source, self.plugin_code(plugin), plugin)
                    if source.name in sources:
                        raise PluginError(
                            f"root source {source.name!r} is provided by two plugins: {owner[source.name]!r} and {plugin!r}; remove one of them from [workspace] plugins"
                        )
                    owner[source.name] = plugin
                    sources[source.name] = source
            self._sources = dict(sorted(sources.items()))
        return self._sources

    def infra_inputs(self) -> dict[str, str]:
        """The merged ``btbuild_infra_inputs`` mapping (sorted by key); computed once."""
        if self._infra is None:
            self._infra = _merge_mappings(
                self.call_each("btbuild_infra_inputs"), "btbuild_infra_inputs", values_are_str=True
            )
        return self._infra

    def storage_backends(self) -> dict[str, Any]:
        """Every ``btbuild_storage_backends`` spec by name (BackendSpec)."""
        from btbuild.storage.registry import BackendSpec

        found: dict[str, BackendSpec] = {}
        owner: dict[str, str] = {}
        for plugin, result in self.call_each("btbuild_storage_backends"):
            for spec in _as_list(result, plugin, "btbuild_storage_backends"):
                if not isinstance(spec, BackendSpec):
                    raise PluginError(
                        f"plugin {plugin!r}: btbuild_storage_backends must return BackendSpec values, got {type(spec).__name__}"
                    )
                if spec.name in found:
                    raise PluginError(
                        f"storage backend {spec.name!r} is provided by two plugins: {owner[spec.name]!r} and {plugin!r}"
                    )
                owner[spec.name], found[spec.name] = plugin, spec
        return found

    def segment_predicates(self) -> dict[str, Any]:
        """Every ``btbuild_segment_predicates`` entry: name -> callable(record) -> bool."""
        merged: dict[str, Any] = {}
        owner: dict[str, str] = {}
        for plugin, result in self.call_each("btbuild_segment_predicates"):
            if result is None:
                continue
            if not isinstance(result, Mapping) or not all(
                isinstance(k, str) and callable(v) for k, v in result.items()
            ):
                raise PluginError(
                    f"plugin {plugin!r}: btbuild_segment_predicates must return a dict of name -> callable"
                )
            for name, predicate in result.items():
                if name in owner:
                    raise PluginError(
                        f"segment predicate {name!r} is provided by two plugins: {owner[name]!r} and {plugin!r}"
                    )
                owner[name] = plugin
                merged[name] = predicate
        self._predicate_owners = owner
        return merged

    def predicate_code(self) -> dict[str, str]:
        """Segment predicate name -> what of its plugin's code counts ("" for btbuild's)."""
        self.segment_predicates()
        return {name: self.plugin_code(owner) for name, owner in self._predicate_owners.items()}

    def check_options(self) -> dict[str, str]:
        """Every key a target's ``checks`` table may use -> its description."""
        if self._options is None:
            self._options = _merge_mappings(
                self.call_each("btbuild_check_options"),
                "btbuild_check_options",
                values_are_str=True,
            )
        return self._options

    def check_overrides(
        self,
        target_name: str,
        overrides: Mapping[str, object] | Iterable[tuple[str, object]],
        build_file: Path | None = None,
    ) -> dict[str, object]:
        """Refuse ``checks`` keys no plugin declares; return the overrides as a dict."""
        table = dict(overrides)
        options = self.check_options()
        for key in sorted(table):
            if key not in options:
                known = ", ".join(sorted(options)) or "none"
                raise ConfigError(
                    f"target {target_name!r}: unknown checks key {key!r} (known: {known})",
                    path=build_file,
                )
        return table

    def validators(
        self,
        target_name: str,
        kind: str,
        overrides: Mapping[str, object] | Iterable[tuple[str, object]] = (),
        build_file: Path | None = None,
    ) -> list[ResultValidator]:
        """Fresh validators for one cell of ``target_name`` (``overrides``: its ``checks``)."""
        table = self.check_overrides(target_name, overrides, build_file)
        validators: list[ResultValidator] = []
        for plugin, result in self.call_each(
            "btbuild_result_validators", target_name=target_name, kind=kind, overrides=table
        ):
            for validator in _as_list(result, plugin, "btbuild_result_validators"):
                if not isinstance(validator, ResultValidator):
                    raise PluginError(
                        f"plugin {plugin!r}: btbuild_result_validators returned {validator!r}, expected btbuild.plugins.ResultValidator instances"
                    )
                validators.append(validator)
        return validators


def _as_list(result: object, plugin: str, hook_name: str) -> list[Any]:
    if result is None:
        return []
    if isinstance(result, str | bytes | Mapping) or not isinstance(result, Iterable):
        raise PluginError(
            f"plugin {plugin!r}: {hook_name} must return a list, got {type(result).__name__}"
        )
    return list(result)


def _merge_mappings(
    results: list[tuple[str, Any]], hook_name: str, *, values_are_str: bool
) -> dict[str, str]:
    merged: dict[str, str] = {}
    owner: dict[str, str] = {}
    for plugin, result in results:
        if result is None:
            continue
        if not isinstance(result, Mapping):
            raise PluginError(
                f"plugin {plugin!r}: {hook_name} must return a dict, got {type(result).__name__}"
            )
        for key, value in result.items():
            if not isinstance(key, str) or (values_are_str and not isinstance(value, str)):
                raise PluginError(
                    f"plugin {plugin!r}: {hook_name} must map str to str, got {key!r}: {value!r}"
                )
            if key in merged and merged[key] != value:
                raise PluginError(
                    f"{hook_name}: key {key!r} is given different values by plugins {owner[key]!r} and {plugin!r}"
                )
            merged.setdefault(key, value)
            owner.setdefault(key, plugin)
    return dict(sorted(merged.items()))
