"""The ``[calculation.NAME]`` tables of a package BUILD.toml: one :class:`Target` each.

Every error names the file, the line, the target and what was expected.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from btbuild.errors import ConfigError, LabelError
from btbuild.vocabulary import KINDS
from btbuild.workspace import features
from btbuild.workspace.labels import NAME_RE, parse_label
from btbuild.workspace.model import DAILY, Schedule, Target
from btbuild.workspace.tomltext import TomlText, display, str_list, suggest, typed

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


def load_target(
    doc: TomlText, root: Path, package: str, folder: Path, name: str, body: Any
) -> Target:
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
    entry_file, attr = _entry(doc, root, folder, table, label, body)
    kind = typed(doc, table, body, "kind", str, default="per_user", label=label)
    if kind not in KINDS:
        raise doc.error(
            f"{label}: kind must be 'per_user' or 'per_date', got {kind!r}{suggest(kind, KINDS)}",
            table,
            "kind",
        )
    deps = _deps(doc, table, label, body, package)
    roots, optional_roots = _roots(doc, table, label, body)
    historical = typed(doc, table, body, "historical", bool, default=False, label=label)
    schedule = _schedule(doc, table, label, body.get("schedule", "daily"))
    lookback = _lookback(doc, table, label, body.get("lookback", {}), roots + optional_roots)
    product_lines = tuple(str_list(doc, table, body, "product_lines", label=label))
    checks = _checks(doc, table, label, body)
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


def _entry(
    doc: TomlText, root: Path, folder: Path, table: str, label: str, body: dict[str, Any]
) -> tuple[Path, str]:
    """``entry = "module:Attr"``: the entry file (it must exist) and the attribute."""
    entry = typed(doc, table, body, "entry", str, required=True, label=label)
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
            f"{label}: entry file {display(root, entry_file)} does not exist", table, "entry"
        )
    return entry_file, attr


def _deps(doc: TomlText, table: str, label: str, body: dict[str, Any], package: str) -> list[str]:
    """``deps``: canonical labels (relative ones read in ``package``), none twice."""
    deps = []
    for text in str_list(doc, table, body, "deps", label=label):
        try:
            dep = parse_label(text, current_package=package)
        except LabelError as exc:
            raise doc.error(f"{label}: bad dependency: {exc}", table, "deps") from None
        deps.append(str(dep))
    if len(set(deps)) != len(deps):
        duplicate = next(d for d in deps if deps.count(d) > 1)
        raise doc.error(f"{label}: dependency {duplicate} is listed twice", table, "deps")
    return deps


def _roots(
    doc: TomlText, table: str, label: str, body: dict[str, Any]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``roots`` and ``optional_roots``: source names, none twice, none in both."""
    roots = tuple(str_list(doc, table, body, "roots", label=label))
    optional_roots = tuple(str_list(doc, table, body, "optional_roots", label=label))
    for source in roots + optional_roots:
        if not NAME_RE.match(source):
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
    return roots, optional_roots


def _checks(doc: TomlText, table: str, label: str, body: dict[str, Any]) -> dict[str, Any]:
    checks = body.get("checks", {})
    if not isinstance(checks, dict) or any(
        not isinstance(v, (bool, int, float, str)) for v in checks.values()
    ):
        raise doc.error(
            f"{label}: checks must be a table of simple values, like {{ null_density = 0.9 }}",
            table,
            "checks",
        )
    return checks


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


def check_deps_exist(root: Path, targets: Mapping[str, Target]) -> None:
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
                path=display(root, target.build_file),
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
