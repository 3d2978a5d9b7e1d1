"""BUILD.toml keys of the calculation features: user segments, dependency look-back, output
schemas, retention and alerts (issue 16).

Kept apart from :mod:`btbuild.workspace.config` (which calls in here) so each feature's rules
sit in one place. Every error names the file, the line and the target, like the rest of the
loader.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from btbuild.errors import ConfigError
from btbuild.workspace.labels import DOTTED_RE, NAME_RE
from btbuild.workspace.model import AlertSettings, Segment, Target

if TYPE_CHECKING:
    from btbuild.workspace.config import TomlText

SEGMENT_KEYS = ("source", "field", "values", "predicate", "version")
ALERT_KEYS = ("topic", "project", "file")
TARGET_KEYS = ("users", "dep_lookback", "schema", "ttl_days", "alert", "stream_deps")
MAX_TTL_DAYS = 36600
MAX_DEP_LOOKBACK = 366
_NAME = NAME_RE
_FIELD = DOTTED_RE


def load_segments(doc: TomlText, value: Any) -> dict[str, Segment]:
    """The ``[segment.NAME]`` tables of the root BUILD.toml: source + field + accepted
    values, or source + a plugin ``predicate`` name (+ a ``version`` to bump when it changes)."""
    if value is None:
        return {}
    if not isinstance(value, dict) or any(not isinstance(v, dict) for v in value.values()):
        raise doc.error("[segment] must hold one table per segment, like [segment.vip]", "segment")
    segments = {}
    for name, body in sorted(value.items()):
        table = f"segment.{name}"
        if not _NAME.match(name):
            raise doc.error(f"segment name {name!r} must match [a-z][a-z0-9_]*", table)
        for key in body:
            if key not in SEGMENT_KEYS:
                raise doc.error(
                    f"segment {name!r}: unknown key {key!r}; allowed: {', '.join(SEGMENT_KEYS)}",
                    table,
                    key,
                )
        segments[name] = _segment(doc, table, name, body)
    return segments


def _segment(doc: TomlText, table: str, name: str, body: Mapping[str, Any]) -> Segment:
    source = body.get("source")
    if not isinstance(source, str) or not _NAME.match(source):
        raise doc.error(
            f"segment {name!r}: source must name a user-scope root source, got {source!r}",
            table,
            "source",
        )
    field, values, predicate = body.get("field"), body.get("values"), body.get("predicate")
    version = body.get("version", "1")
    if not isinstance(version, str | int) or isinstance(version, bool):
        raise doc.error(f"segment {name!r}: version must be a string", table, "version")
    if predicate is not None:
        if field is not None or values is not None:
            raise doc.error(
                f"segment {name!r}: give either field + values or predicate, not both",
                table,
                "predicate",
            )
        if not isinstance(predicate, str) or not _NAME.match(predicate):
            raise doc.error(
                f"segment {name!r}: predicate must name a btbuild_segment_predicates entry, got {predicate!r}",
                table,
                "predicate",
            )
        return Segment(name, source, predicate=predicate, version=str(version))
    if not isinstance(field, str) or not _FIELD.match(field):
        raise doc.error(
            f"segment {name!r}: field must be a key (or dotted path) of the {source} record, got {field!r}",
            table,
            "field",
        )
    if (
        not isinstance(values, list)
        or not values
        or any(not isinstance(v, str | int | bool) for v in values)
    ):
        raise doc.error(
            f"segment {name!r}: values must be a non-empty list of accepted strings, numbers or booleans",
            table,
            "values",
        )
    return Segment(name, source, field=field, values=tuple(values), version=str(version))


def load_alerts(doc: TomlText, value: Any) -> AlertSettings | None:
    """``[alerts]``: where ``alert = true`` targets publish (a Pub/Sub topic)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise doc.error("[alerts] must be a table", "alerts")
    for key in value:
        if key not in ALERT_KEYS:
            raise doc.error(
                f"unknown key {key!r} in [alerts]; allowed: {', '.join(ALERT_KEYS)}", "alerts", key
            )
    topic, file = value.get("topic"), value.get("file")
    if (topic is None) == (file is None):
        raise doc.error(
            "[alerts] needs either topic (a Pub/Sub topic id) or file (a JSON Lines file in the workspace)",
            "alerts",
        )
    if topic is not None and (
        not isinstance(topic, str) or not re.match(r"[A-Za-z][\w.~+%\-]{2,254}\Z", topic)
    ):
        raise doc.error(
            f"[alerts] topic must be a Pub/Sub topic id, got {topic!r}", "alerts", "topic"
        )
    if file is not None and (
        not isinstance(file, str) or file.startswith(("/", "~")) or ".." in file.split("/")
    ):
        raise doc.error(
            f"[alerts] file must be a path inside the workspace, got {file!r}", "alerts", "file"
        )
    project = value.get("project")
    if project is not None and not isinstance(project, str):
        raise doc.error("[alerts] project must be a string", "alerts", "project")
    return AlertSettings(topic=topic, project=project, file=file)


def ttl_value(doc: TomlText, table: str, key: str, value: Any, prefix: str = "") -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TTL_DAYS:
        raise doc.error(
            f"{prefix}{key} must be a whole number of days from 1 to {MAX_TTL_DAYS}, got {value!r}",
            table,
            key,
        )
    return value


def target_options(
    doc: TomlText, root: Path, table: str, label: str, body: Mapping[str, Any], deps: list[str]
) -> dict[str, Any]:
    """The feature keys of one ``[calculation.NAME]`` table, as Target fields."""
    options: dict[str, Any] = {}
    users = body.get("users")
    if users is not None:
        if not isinstance(users, str) or not _NAME.match(users):
            raise doc.error(
                f"{label}: users must name a [segment.NAME] of the workspace BUILD.toml, got {users!r}",
                table,
                "users",
            )
        options["users"] = users
    options["dep_lookback"] = _dep_lookback(doc, table, label, body.get("dep_lookback"), deps)
    if "schema" in body:
        options["schema_json"], options["schema_file"] = _schema(
            doc, root, table, label, body["schema"]
        )
    options["ttl_days"] = ttl_value(doc, table, "ttl_days", body.get("ttl_days"), f"{label}: ")
    alert = body.get("alert", False)
    if not isinstance(alert, bool):
        raise doc.error(f"{label}: alert must be true or false, got {alert!r}", table, "alert")
    options["alert"] = alert
    stream = body.get("stream_deps", False)
    if not isinstance(stream, bool):
        raise doc.error(
            f"{label}: stream_deps must be true or false, got {stream!r}", table, "stream_deps"
        )
    if stream and body.get("kind", "per_user") != "per_date":
        raise doc.error(
            f"{label}: stream_deps is for per_date targets (it streams their per_user deps)",
            table,
            "stream_deps",
        )
    options["stream_deps"] = stream
    return options


def _dep_lookback(
    doc: TomlText, table: str, label: str, value: Any, deps: list[str]
) -> tuple[tuple[str, int], ...]:
    """``dep_lookback = { name = days }``: keys are dep names (or labels), resolved to labels."""
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise doc.error(
            f"{label}: dep_lookback must be a table like {{ portfolio_value = 7 }}",
            table,
            "dep_lookback",
        )
    by_name = {dep.rpartition(":")[2]: dep for dep in deps} | {dep: dep for dep in deps}
    resolved: dict[str, int] = {}
    for key, days in value.items():
        dep = by_name.get(key)
        if dep is None:
            known = ", ".join(sorted(d.rpartition(":")[2] for d in deps)) or "none"
            raise doc.error(
                f"{label}: dep_lookback names {key!r}, which is not one of its deps ({known})",
                table,
                "dep_lookback",
            )
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DEP_LOOKBACK:
            raise doc.error(
                f"{label}: dep_lookback for {key!r} must be a whole number of days from 1 to {MAX_DEP_LOOKBACK}, got {days!r}",
                table,
                "dep_lookback",
            )
        resolved[dep] = days
    return tuple(sorted(resolved.items()))


def _schema(
    doc: TomlText, root: Path, table: str, label: str, value: Any
) -> tuple[str, str | None]:
    """An inline schema table, or a workspace-relative ``.json`` file; checked as a JSON
    Schema now (a bad schema is a workspace error, not a failed cell)."""
    path: str | None = None
    if isinstance(value, str):
        path = value
        file = (root / value).resolve()
        if not value.endswith(".json") or (root != file and root not in file.parents):
            raise doc.error(
                f"{label}: schema {value!r} must be a .json file inside the workspace",
                table,
                "schema",
            )
        try:
            schema = json.loads(file.read_text(encoding="utf-8"))
        except OSError:
            raise doc.error(
                f"{label}: schema file {value} does not exist", table, "schema"
            ) from None
        except ValueError as exc:
            raise doc.error(
                f"{label}: schema file {value} is not JSON: {exc}", table, "schema"
            ) from None
    elif isinstance(value, dict):
        schema = value
    else:
        raise doc.error(
            f'{label}: schema must be an inline table or a path like "schemas/x.json", got {value!r}',
            table,
            "schema",
        )
    from btbuild.execution.schemas import check_schema

    problem = check_schema(schema)
    if problem:
        raise doc.error(f"{label}: schema is not a valid JSON Schema: {problem}", table, "schema")
    return json.dumps(schema, sort_keys=True, separators=(",", ":")), path


def check_references(
    targets: Mapping[str, Target],
    segments: Mapping[str, Segment],
    root: Path,
    alerts: AlertSettings | None,
) -> None:
    """Every ``users = NAME`` names a segment; segment targets are per_user and read the
    segment's source (so its data is part of the cell's inputs); alert targets need
    ``[alerts]``."""
    for target in targets.values():
        where: dict[str, Any] = {"path": _display(root, target.build_file), "line": target.line}
        if target.alert and alerts is None:
            raise ConfigError(
                f"{target.label}: alert = true needs an [alerts] table with the Pub/Sub topic in the workspace BUILD.toml",
                **where,
            )
        if target.users is None:
            continue
        segment = segments.get(target.users)
        if segment is None:
            known = (
                ", ".join(sorted(segments))
                or "none: add [segment.NAME] to the workspace BUILD.toml"
            )
            raise ConfigError(
                f"{target.label}: users = {target.users!r} is not a segment (known: {known})",
                **where,
            )
        if target.kind != "per_user":
            raise ConfigError(
                f'{target.label}: users = {target.users!r} needs kind = "per_user"', **where
            )
        if segment.source not in target.all_roots:
            raise ConfigError(
                f"{target.label}: segment {segment.name!r} is defined on source {segment.source!r}: "
                f"add it to roots (or optional_roots)",
                **where,
            )


def _display(root: Path, path: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)
