"""Load and validate a workspace: the root ``BUILD.toml`` and every package ``BUILD.toml``.

Every error names the file, the line where the key or table sits (TOML parsers do not report
positions for valid documents, so we locate headers and keys in the text ourselves), the
target, what was expected and, for misspelled keys, a "did you mean" suggestion.
"""

from __future__ import annotations

import os
import re
from datetime import date
from pathlib import Path
from typing import Any

from btbuild.errors import ConfigError
from btbuild.workspace import features
from btbuild.workspace.labels import DOTTED_RE, SEGMENT_RE
from btbuild.workspace.model import (
    ExecutionSettings,
    SimSettings,
    StorageSettings,
    Target,
    Workspace,
)
from btbuild.workspace.targets import check_deps_exist, load_target
from btbuild.workspace.tomltext import TomlText as TomlText  # (features.py reads it from here)
from btbuild.workspace.tomltext import date_value, display, reject_unknown, str_list, suggest, typed

BUILD_FILE = "BUILD.toml"
ROOT_TABLES = ("workspace", "storage", "execution", "plugin", "sim", "segment", "alerts")
WORKSPACE_KEYS = ("name", "packages", "epoch", "plugins", "start_date", "ttl_days")
DEFAULT_START_DATE = date(2024, 1, 1)


def find_workspace_root(start: Path) -> Path:
    """Walk up from ``start`` to the first folder whose BUILD.toml has a [workspace] table."""
    start = start.resolve()
    for folder in (start, *start.parents):
        candidate = folder / BUILD_FILE
        if candidate.is_file():
            try:
                text = candidate.read_text(encoding="utf-8")
            except OSError as exc:  # it may be the workspace: say so rather than look further
                raise ConfigError(f"cannot read: {exc.strerror}", path=candidate) from None
            except UnicodeDecodeError:
                raise ConfigError("cannot read: not UTF-8 text", path=candidate) from None
            if re.search(r"^\s*\[\s*workspace\s*\]", text, re.MULTILINE):
                return folder
    raise ConfigError(
        f"no workspace found: no BUILD.toml with a [workspace] table in {start} or any parent "
        "(run inside a workspace or pass --workspace DIR)"
    )


def load_workspace(root: Path | str) -> Workspace:
    """Load the workspace rooted at ``root`` (the folder holding the root BUILD.toml)."""
    root = Path(root).resolve()
    build = root / BUILD_FILE
    if not build.is_file():
        raise ConfigError(f"no {BUILD_FILE} in workspace folder {root}")
    doc = TomlText(build, BUILD_FILE)
    data = doc.data
    for table in data:
        if table not in ROOT_TABLES and not (table == "calculation"):
            raise doc.error(
                f"unknown table [{table}]{suggest(table, ROOT_TABLES)}; allowed: {', '.join(ROOT_TABLES)}",
                table,
            )
    if "workspace" not in data or not isinstance(data["workspace"], dict):
        raise ConfigError("missing [workspace] table", path=BUILD_FILE)
    ws = data["workspace"]
    name, packages, packages_dir, epoch, plugins, start_date = _workspace_table(doc, root, ws)
    storage = _storage(doc, root, data.get("storage", {}))
    execution = _execution(doc, data.get("execution", {}))
    sim = _sim(doc, data.get("sim", {}))
    plugin_settings = data.get("plugin", {})
    if not isinstance(plugin_settings, dict) or any(
        not isinstance(v, dict) for v in plugin_settings.values()
    ):
        raise doc.error("[plugin] must hold one table per plugin, like [plugin.market]", "plugin")

    targets = _load_targets(doc, root, packages_dir)
    if "calculation" in data and packages_dir != root:
        raise doc.error(
            "[calculation.*] tables belong in package BUILD.toml files under "
            f"{packages!r}, not in the workspace BUILD.toml",
            "calculation",
        )
    check_deps_exist(root, targets)
    segments = features.load_segments(doc, data.get("segment"))
    alerts = features.load_alerts(doc, data.get("alerts"))
    features.check_references(targets, segments, root, alerts)
    ordered = dict(sorted(targets.items(), key=lambda item: item[1].label))
    return Workspace(
        root=root,
        name=name,
        packages_dir=packages_dir,
        epoch=epoch,
        plugins=plugins,
        start_date=start_date,
        storage=storage,
        execution=execution,
        targets=ordered,
        plugin_settings={k: dict(v) for k, v in plugin_settings.items()},
        sim=sim,
        segments=segments,
        ttl_days=features.ttl_value(doc, "workspace", "ttl_days", ws.get("ttl_days")),
        alerts=alerts,
    )


def _workspace_table(
    doc: TomlText, root: Path, ws: dict[str, Any]
) -> tuple[str, str, Path, int, tuple[str, ...], date]:
    """``[workspace]``: name, packages (and its folder), epoch, plugins, start_date."""
    reject_unknown(doc, "workspace", ws, WORKSPACE_KEYS)
    name = typed(doc, "workspace", ws, "name", str, required=True)
    if not re.match(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*\Z", name):
        raise doc.error(
            f"workspace name {name!r} may only use letters, digits, '_', '.' and '-'",
            "workspace",
            "name",
        )
    packages = typed(doc, "workspace", ws, "packages", str, default="calculations")
    packages_dir = _inside(doc, root, packages, "workspace", "packages")
    if not packages_dir.is_dir():
        raise doc.error(f"packages folder {packages!r} does not exist", "workspace", "packages")
    epoch = typed(doc, "workspace", ws, "epoch", int, default=0)
    if epoch < 0:
        raise doc.error(f"epoch must be >= 0, got {epoch}", "workspace", "epoch")
    plugins = tuple(str_list(doc, "workspace", ws, "plugins"))
    for plugin in plugins:
        if not DOTTED_RE.match(plugin):
            raise doc.error(
                f"plugin {plugin!r} is not a module name like 'plugins.market'",
                "workspace",
                "plugins",
            )
    start_date = date_value(doc, "workspace", ws, "start_date", DEFAULT_START_DATE)

    return name, packages, packages_dir, epoch, plugins, start_date


def _load_targets(doc: TomlText, root: Path, packages_dir: Path) -> dict[str, Target]:
    """Every package's targets, by name (names are unique in the whole workspace)."""
    build = doc.path
    targets: dict[str, Target] = {}
    origins: dict[str, str] = {}
    for package, build_file in discover_packages(root, packages_dir):
        package_doc = (
            doc if build_file == build else TomlText(build_file, display(root, build_file))
        )
        for target in load_package(package_doc, root, package, build_file.parent):
            if target.name in targets:
                raise ConfigError(
                    f"duplicate target name {target.name!r}: {target.label} clashes with {targets[target.name].label} "
                    f"({origins[target.name]}); names are unique in the whole workspace",
                    path=package_doc.display,
                    line=target.line,
                )
            targets[target.name] = target
            origins[target.name] = f"{package_doc.display}:{target.line}"
    return targets


def _inside(doc: TomlText, root: Path, relative: str, table: str, key: str) -> Path:
    if os.path.isabs(relative) or relative.startswith("~"):
        raise doc.error(f"{key} must be relative to the workspace, got {relative!r}", table, key)
    resolved = (root / relative).resolve()
    if resolved != root and root not in resolved.parents:
        raise doc.error(f"{key} {relative!r} points outside the workspace", table, key)
    return resolved


def discover_packages(root: Path, packages_dir: Path) -> list[tuple[str, Path]]:
    """Every folder under ``packages_dir`` with a BUILD.toml, as (package path, file), sorted."""
    found: list[tuple[str, Path]] = []
    for folder, dirs, files in os.walk(packages_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
        if BUILD_FILE not in files:
            continue
        path = Path(folder)
        if path == root:
            # the workspace BUILD.toml doubles as a package only when packages = "."
            package = ""
        else:
            package = path.relative_to(packages_dir).as_posix()
            if package == ".":
                package = ""
        for segment in package.split("/") if package else ():
            if not SEGMENT_RE.match(segment):
                raise ConfigError(
                    f"package folder name {segment!r} cannot be part of a label "
                    "(use letters, digits, '_' and '-')",
                    path=display(root, path / BUILD_FILE),
                )
        found.append((package, path / BUILD_FILE))
    found.sort()
    return found


def load_package(doc: TomlText, root: Path, package: str, folder: Path) -> list[Target]:
    data = doc.data
    is_root = doc.path == root / BUILD_FILE
    for table in data:
        if table == "calculation" or (is_root and table in ROOT_TABLES):
            continue
        raise doc.error(
            f"unknown table [{table}]{suggest(table, ('calculation',))}; a package BUILD.toml holds [calculation.NAME] tables",
            table,
        )
    calculations = data.get("calculation", {})
    if not isinstance(calculations, dict):
        raise doc.error(
            "[calculation] must hold one table per target, like [calculation.my_target]",
            "calculation",
        )
    return [
        load_target(doc, root, package, folder, name, body) for name, body in calculations.items()
    ]


def _storage(doc: TomlText, root: Path, values: Any) -> StorageSettings:
    """``backend`` names a registered backend (btbuild_storage_backends); the backend checks
    the rest of its table when the session opens it. ``project`` (the Google Cloud project)
    is shared with Pub/Sub and alerts."""
    if not isinstance(values, dict):
        raise doc.error("[storage] must be a table", "storage")
    backend = typed(doc, "storage", values, "backend", str, default="sqlite")
    project = typed(doc, "storage", values, "project", str, default=None)
    return StorageSettings(
        backend=backend,
        project=project,
        options=tuple(sorted((key, value) for key, value in values.items() if key != "backend")),
        lines=tuple((key, doc.line_of("storage", key) or 0) for key in values),
        build_file=doc.display,
    )


_EXECUTION_RULES: dict[str, tuple[type, float, float]] = {
    "flush_every": (int, 1, 10**9),
    "memory_fraction": (float, 0.05, 0.99),
    "max_failure_rate": (float, 0.0, 1.0),
    "min_items": (int, 0, 10**9),
    "max_attempts": (int, 1, 1000),
    "lease_seconds": (int, 1, 7 * 86400),
    "retry_backoff": (int, 0, 600),
    "user_shards": (int, 1, 256),
}


def _execution(doc: TomlText, values: Any) -> ExecutionSettings:
    if not isinstance(values, dict):
        raise doc.error("[execution] must be a table", "execution")
    reject_unknown(doc, "execution", values, tuple(_EXECUTION_RULES))
    settings: dict[str, Any] = {}
    for key, value in values.items():
        kind, low, high = _EXECUTION_RULES[key]
        ok_type = isinstance(value, (int, float)) if kind is float else isinstance(value, int)
        if isinstance(value, bool) or not ok_type or not low <= value <= high:
            expected = "a number" if kind is float else "a whole number"
            raise doc.error(
                f"[execution] {key} must be {expected} from {low:g} to {high:g}, got {value!r}",
                "execution",
                key,
            )
        settings[key] = kind(value)
    return ExecutionSettings(**settings)


_SIM_RULES: dict[str, tuple[int, int]] = {
    "replay_dates": (1, 1000),
    "replay_users": (1, 10**6),
    "seed": (0, 2**31 - 1),
}


def _sim(doc: TomlText, values: Any) -> SimSettings:
    """``[sim]``: how many stored cells the cosmetic-change check replays (docs/sim.md)."""
    if not isinstance(values, dict):
        raise doc.error("[sim] must be a table", "sim")
    reject_unknown(doc, "sim", values, tuple(_SIM_RULES))
    settings: dict[str, int] = {}
    for key, value in values.items():
        low, high = _SIM_RULES[key]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise doc.error(
                f"[sim] {key} must be a whole number from {low} to {high}, got {value!r}",
                "sim",
                key,
            )
        settings[key] = value
    return SimSettings(**settings)
