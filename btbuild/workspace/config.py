"""Load and validate a workspace: the root ``BUILD.toml`` and every package ``BUILD.toml``.

Every error names the file, the line where the key or table sits (TOML parsers do not report
positions for valid documents, so we locate headers and keys in the text ourselves), the
target, what was expected and, for misspelled keys, a "did you mean" suggestion.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
from collections.abc import Mapping
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Any

from btbuild.errors import ConfigError, LabelError
from btbuild.vocabulary import KINDS
from btbuild.workspace import features
from btbuild.workspace.labels import NAME_RE, SEGMENT_RE, parse_label
from btbuild.workspace.model import (
    DAILY,
    ExecutionSettings,
    Schedule,
    SimSettings,
    StorageSettings,
    Target,
    Workspace,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

BUILD_FILE = "BUILD.toml"
ROOT_TABLES = ("workspace", "storage", "execution", "plugin", "sim", "segment", "alerts")
WORKSPACE_KEYS = ("name", "packages", "epoch", "plugins", "start_date", "ttl_days")
CALCULATION_KEYS = (
    "entry",
    "kind",
    "deps",
    "roots",
    "optional_roots",
    "historical",
    "schedule",
    "lookback",
    "product_lines",
    "checks",
    *features.TARGET_KEYS,
)
DEFAULT_START_DATE = date(2024, 1, 1)


class TomlText:
    """A parsed TOML file that can say on which line a table or a key was written."""

    def __init__(self, path: Path, display: str):
        self.path = path
        self.display = display
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read: {exc.strerror}", path=display) from None
        try:
            self.text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError("not UTF-8 text", path=display) from None
        try:
            self.data: dict[str, Any] = tomllib.loads(self.text)
        except tomllib.TOMLDecodeError as exc:
            message = str(exc)
            match = re.search(r"\(at line (\d+), column \d+\)", message)
            line = int(match.group(1)) if match else None
            message = re.sub(r"\s*\(at line \d+, column \d+\)", "", message)
            raise ConfigError(f"invalid TOML: {message}", path=display, line=line) from None
        self.lines = self.text.splitlines()

    @cached_property
    def headers(self) -> dict[tuple[str, ...], int]:
        """Table header -> 1-based line, found in one pass over the text."""
        found: dict[tuple[str, ...], int] = {}
        for number, line in enumerate(self.lines, 1):
            match = _HEADER.match(line)
            if match:
                parts = tuple(part.strip().strip("\"'") for part in match.group(1).split("."))
                found.setdefault(parts, number)
        return found

    def line_of(self, table: str, key: str | None = None) -> int | None:
        """1-based line of ``[table]`` (dotted) or of ``key =`` inside it; None if not found."""
        start = self.headers.get(tuple(table.split(".")))
        if start is None or key is None:
            return start
        assignment = re.compile(r"^\s*" + _key_re(key) + r"\s*[=.]")
        for number in range(start + 1, len(self.lines) + 1):
            line = self.lines[number - 1]
            if line.lstrip().startswith("["):
                break
            if assignment.match(line):
                return number
        return start  # the key sits in an inline table: the header is the best place to point

    def error(self, message: str, table: str, key: str | None = None) -> ConfigError:
        return ConfigError(message, path=self.display, line=self.line_of(table, key))


_HEADER = re.compile(r"^\s*\[(?!\[)\s*([^\]]+?)\s*\]")


def _key_re(part: str) -> str:
    escaped = re.escape(part)
    return f"(?:{escaped}|\"{escaped}\"|'{escaped}')"


def suggest(word: str, options: Any) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def reject_unknown(
    doc: TomlText, table: str, values: Mapping[str, Any], allowed: tuple[str, ...]
) -> None:
    for key in values:
        if key not in allowed:
            raise doc.error(
                f"unknown key {key!r} in [{table}]{suggest(key, allowed)}; allowed: {', '.join(allowed)}",
                table,
                key,
            )


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
    reject_unknown(doc, "workspace", ws, WORKSPACE_KEYS)
    name = _typed(doc, "workspace", ws, "name", str, required=True)
    if not re.match(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*\Z", name):
        raise doc.error(
            f"workspace name {name!r} may only use letters, digits, '_', '.' and '-'",
            "workspace",
            "name",
        )
    packages = _typed(doc, "workspace", ws, "packages", str, default="calculations")
    packages_dir = _inside(doc, root, packages, "workspace", "packages")
    if not packages_dir.is_dir():
        raise doc.error(f"packages folder {packages!r} does not exist", "workspace", "packages")
    epoch = _typed(doc, "workspace", ws, "epoch", int, default=0)
    if epoch < 0:
        raise doc.error(f"epoch must be >= 0, got {epoch}", "workspace", "epoch")
    plugins = tuple(_str_list(doc, "workspace", ws, "plugins"))
    for plugin in plugins:
        if not re.match(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\Z", plugin):
            raise doc.error(
                f"plugin {plugin!r} is not a module name like 'plugins.market'",
                "workspace",
                "plugins",
            )
    start_date = _date(doc, "workspace", ws, "start_date", DEFAULT_START_DATE)

    storage = _storage(doc, root, data.get("storage", {}))
    execution = _execution(doc, data.get("execution", {}))
    sim = _sim(doc, data.get("sim", {}))
    plugin_settings = data.get("plugin", {})
    if not isinstance(plugin_settings, dict) or any(
        not isinstance(v, dict) for v in plugin_settings.values()
    ):
        raise doc.error("[plugin] must hold one table per plugin, like [plugin.market]", "plugin")

    targets: dict[str, Target] = {}
    origins: dict[str, str] = {}
    for package, build_file in discover_packages(root, packages_dir):
        package_doc = (
            doc if build_file == build else TomlText(build_file, _display(root, build_file))
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
    if "calculation" in data and packages_dir != root:
        raise doc.error(
            "[calculation.*] tables belong in package BUILD.toml files under "
            f"{packages!r}, not in the workspace BUILD.toml",
            "calculation",
        )
    _check_deps_exist(root, targets)
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


def _display(root: Path, path: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


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
                    path=_display(root, path / BUILD_FILE),
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
    return [_target(doc, root, package, folder, name, body) for name, body in calculations.items()]


def _target(doc: TomlText, root: Path, package: str, folder: Path, name: str, body: Any) -> Target:
    table = f"calculation.{name}"
    label = f"//{package}:{name}"
    if not NAME_RE.match(name):
        raise doc.error(f"target name {name!r} must match [a-z][a-z0-9_]*", table)
    if not isinstance(body, dict):
        raise doc.error(f"{label}: [calculation.{name}] must be a table", table)
    for key in body:
        if key not in CALCULATION_KEYS:
            raise doc.error(
                f"{label}: unknown key {key!r}{suggest(key, CALCULATION_KEYS)}; allowed: {', '.join(CALCULATION_KEYS)}",
                table,
                key,
            )
    entry = _typed(doc, table, body, "entry", str, required=True, label=label)
    module, sep, attr = entry.partition(":")
    if (
        not sep
        or not module
        or not attr
        or not attr.isidentifier()
        or not re.match(r"[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*\Z", module)
    ):
        raise doc.error(
            f"{label}: entry {entry!r} must look like 'module:ClassOrFunction'", table, "entry"
        )
    entry_file = folder / f"{module}.py"
    if not entry_file.is_file():
        raise doc.error(
            f"{label}: entry file {_display(root, entry_file)} does not exist", table, "entry"
        )
    kind = _typed(doc, table, body, "kind", str, default="per_user", label=label)
    if kind not in KINDS:
        raise doc.error(
            f"{label}: kind must be 'per_user' or 'per_date', got {kind!r}{suggest(kind, KINDS)}",
            table,
            "kind",
        )
    deps = []
    for text in _str_list(doc, table, body, "deps", label=label):
        try:
            dep = parse_label(text, current_package=package)
        except LabelError as exc:
            raise doc.error(f"{label}: bad dependency: {exc}", table, "deps") from None
        deps.append(str(dep))
    if len(set(deps)) != len(deps):
        duplicate = next(d for d in deps if deps.count(d) > 1)
        raise doc.error(f"{label}: dependency {duplicate} is listed twice", table, "deps")
    roots = tuple(_str_list(doc, table, body, "roots", label=label))
    optional_roots = tuple(_str_list(doc, table, body, "optional_roots", label=label))
    for source in roots + optional_roots:
        if not re.match(r"[a-z][a-z0-9_]*\Z", source):
            raise doc.error(
                f"{label}: root source name {source!r} must match [a-z][a-z0-9_]*", table, "roots"
            )
    both = set(roots) & set(optional_roots)
    if both:
        raise doc.error(
            f"{label}: {sorted(both)[0]!r} is in both roots and optional_roots",
            table,
            "optional_roots",
        )
    if len(set(roots)) != len(roots) or len(set(optional_roots)) != len(optional_roots):
        raise doc.error(f"{label}: a root source is listed twice", table, "roots")
    historical = _typed(doc, table, body, "historical", bool, default=False, label=label)
    schedule = _schedule(doc, table, label, body.get("schedule", "daily"))
    lookback = _lookback(doc, table, label, body.get("lookback", {}), roots + optional_roots)
    product_lines = tuple(_str_list(doc, table, body, "product_lines", label=label))
    checks = body.get("checks", {})
    if not isinstance(checks, dict) or any(
        not isinstance(v, (bool, int, float, str)) for v in checks.values()
    ):
        raise doc.error(
            f"{label}: checks must be a table of simple values, like {{ null_density = 0.9 }}",
            table,
            "checks",
        )
    return Target(
        name=name,
        package=package,
        entry_file=entry_file,
        entry_attr=attr,
        kind=kind,
        deps=tuple(deps),
        roots=roots,
        optional_roots=optional_roots,
        historical=historical,
        schedule=schedule,
        lookback=lookback,
        product_lines=product_lines,
        checks=tuple(sorted(checks.items())),
        **features.target_options(doc, root, table, label, body, deps),
        build_file=doc.path,
        line=doc.line_of(table),
    )


def _schedule(doc: TomlText, table: str, label: str, value: Any) -> Schedule:
    if value == "daily":
        return DAILY
    if isinstance(value, dict) and len(value) == 1:
        ((key, days),) = value.items()
        bounds = {"weekdays": (0, 6), "monthdays": (1, 31)}.get(key)
        if (
            bounds
            and isinstance(days, list)
            and days
            and all(
                isinstance(d, int) and not isinstance(d, bool) and bounds[0] <= d <= bounds[1]
                for d in days
            )
        ):
            ordered = tuple(sorted(set(days)))
            return Schedule(weekdays=ordered) if key == "weekdays" else Schedule(monthdays=ordered)
    raise doc.error(
        f'{label}: schedule must be "daily", {{ weekdays = [0..6] }} (Monday = 0) or {{ monthdays = [1..31] }}, got {value!r}',
        table,
        "schedule",
    )


def _lookback(
    doc: TomlText, table: str, label: str, value: Any, sources: tuple[str, ...]
) -> tuple[tuple[str, int], ...]:
    if not isinstance(value, dict):
        raise doc.error(
            f"{label}: lookback must be a table like {{ prices = 30 }}", table, "lookback"
        )
    for source, days in value.items():
        if source not in sources:
            raise doc.error(
                f"{label}: lookback names {source!r}, which is not in roots or optional_roots{suggest(source, sources)}",
                table,
                "lookback",
            )
        if not isinstance(days, int) or isinstance(days, bool) or not 0 <= days <= 3660:
            raise doc.error(
                f"{label}: lookback for {source!r} must be a whole number of days from 0 to 3660, got {days!r}",
                table,
                "lookback",
            )
    return tuple(sorted(value.items()))


def _storage(doc: TomlText, root: Path, values: Any) -> StorageSettings:
    """``backend`` names a registered backend (btbuild_storage_backends); the backend checks
    the rest of its table when the session opens it. ``project`` (the Google Cloud project)
    is shared with Pub/Sub and alerts."""
    if not isinstance(values, dict):
        raise doc.error("[storage] must be a table", "storage")
    backend = _typed(doc, "storage", values, "backend", str, default="sqlite")
    project = _typed(doc, "storage", values, "project", str, default=None)
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


def _typed(
    doc: TomlText,
    table: str,
    values: Mapping[str, Any],
    key: str,
    kind: type,
    *,
    required: bool = False,
    default: Any = None,
    label: str | None = None,
) -> Any:
    prefix = f"{label}: " if label else ""
    if key not in values:
        if required:
            raise doc.error(f"{prefix}missing required key {key!r} in [{table}]", table)
        return default
    value = values[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        names = {str: "a string", int: "a whole number", bool: "true or false"}
        raise doc.error(
            f"{prefix}{key} must be {names.get(kind, kind.__name__)}, got {value!r}", table, key
        )
    return value


def _str_list(
    doc: TomlText, table: str, values: Mapping[str, Any], key: str, *, label: str | None = None
) -> list[str]:
    value = values.get(key, [])
    if not isinstance(value, list) or any(not isinstance(v, str) for v in value):
        prefix = f"{label}: " if label else ""
        raise doc.error(f"{prefix}{key} must be a list of strings, got {value!r}", table, key)
    return list(value)


def _date(doc: TomlText, table: str, values: Mapping[str, Any], key: str, default: date) -> date:
    value = values.get(key, default)
    if isinstance(value, date) and not hasattr(value, "hour"):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise doc.error(f'{key} must be a date like "2024-01-01", got {value!r}', table, key)


def _check_deps_exist(root: Path, targets: Mapping[str, Target]) -> None:
    labels = {t.label: t for t in targets.values()}
    for target in targets.values():
        for dep in target.deps:
            if dep in labels:
                continue
            name = dep.rpartition(":")[2]
            hint = ""
            if name in targets:
                hint = f" (the target is {targets[name].label})"
            else:
                hint = suggest(dep, labels)
            raise ConfigError(
                f"{target.label}: unknown dependency {dep}{hint}",
                path=_display(root, target.build_file),
                line=_dep_line(target),
            )


def _dep_line(target: Target) -> int | None:
    doc_lines = target.build_file.read_text(encoding="utf-8").splitlines()
    start = (target.line or 1) - 1
    for number in range(start, len(doc_lines)):
        if re.match(r"^\s*deps\s*=", doc_lines[number]):
            return number + 1
        if number > start and re.match(r"^\s*\[", doc_lines[number]):
            break
    return target.line
