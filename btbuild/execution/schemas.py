"""Output schemas: a target's ``schema`` (JSON Schema) checked on every result item before
the cell commits.

Validation is compiled once per schema and process with ``jsonschema-rs`` (a Rust validator
that passes the official JSON Schema test suite; formats are asserted, as a schema author
expects). It replaced ``fastjsonschema`` after bench/bench_schemas.py measured it 7-14x
faster on nested results (2.1 us against 15.1 us per value under load), which is what keeps
validation within 10% of a per_user cell. The schema itself is checked against its
meta-schema with ``jsonschema`` (the reference implementation, whose errors say where) when
the workspace loads, so a bad schema is a workspace error (exit 2), not a failed cell. A
violation fails the cell with the user, the JSON path inside the value and what the schema
wanted.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from btbuild.plugins.validators import ResultValidator

Validate = Callable[[Any], Any]


def check_schema(schema: Any) -> str | None:
    """None when ``schema`` is a valid JSON Schema (any draft it declares, 2020-12 by
    default), else one line saying what is wrong and where. A schema the Rust meta-schema
    check passes and the validator compiles needs nothing more (every workspace load checks
    its schemas: importing the reference implementation costs more than the check); any
    other is judged by the reference implementation, whose errors say where."""
    if not isinstance(schema, dict):
        return f"a schema is a JSON object, got {type(schema).__name__}"
    if _fast_valid(schema):
        return None
    import jsonschema
    from jsonschema.validators import validator_for

    try:
        validator_for(schema, default=jsonschema.Draft202012Validator).check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(part) for part in exc.absolute_path) or "(top level)"
        return f"at {where}: {exc.message}"
    try:
        _compile(schema)
    except Exception as exc:  # noqa: BLE001 - e.g. a pattern the validator cannot compile
        return str(exc).splitlines()[0]
    return None


def _fast_valid(schema: dict[str, Any]) -> bool:
    import jsonschema_rs

    try:
        if not jsonschema_rs.meta.is_valid(schema):
            return False
        _compile(schema)
    except Exception:  # noqa: BLE001 - an unknown draft, a bad pattern: the slow path says
        return False
    return True


def _compile(schema: Any) -> Any:
    import jsonschema_rs

    return jsonschema_rs.validator_for(schema, validate_formats=True)


@lru_cache(maxsize=256)
def _validator(schema_json: str) -> Any:
    return _compile(json.loads(schema_json))


def is_valid(schema_json: str) -> Callable[[Any], bool]:
    """The compiled verdict function of a canonical schema text (once per process)."""
    verdict: Callable[[Any], bool] = _validator(schema_json).is_valid
    return verdict


def compiled(schema_json: str) -> Validate:
    """The compiled validation function of a canonical schema text: raises ValueError (the
    message is :func:`violation`'s) when a value violates the schema."""
    verdict = is_valid(schema_json)

    def validate(value: Any) -> Any:
        if not verdict(value):
            raise ValueError(violation(schema_json, value) or "invalid")
        return value

    return validate


def violation(schema_json: str, value: Any) -> str | None:
    """None when ``value`` satisfies the schema, else ``"$.path: message"`` (the first
    violation, in the validator's order)."""
    import jsonschema_rs

    try:
        _validator(schema_json).validate(value)
    except jsonschema_rs.ValidationError as exc:
        return f"{json_path(exc.instance_path)}: {_short(exc.message)}"
    except (TypeError, ValueError) as exc:  # a value JSON cannot hold (nor the encoder)
        return f"$: {exc}"
    return None


MESSAGE_LIMIT = 240  # the validator quotes the offending value, which may be a whole result


def _short(message: str) -> str:
    message = " ".join(message.split())
    return message if len(message) <= MESSAGE_LIMIT else message[: MESSAGE_LIMIT - 1] + "…"


def json_path(parts: Any) -> str:
    """``$.positions[2].weight`` from the instance path ``["positions", 2, "weight"]``."""
    text = "$"
    for part in parts or ():
        if isinstance(part, int):
            text += f"[{part}]"
        elif isinstance(part, str) and part.isidentifier():
            text += f".{part}"
        else:
            text += f"[{json.dumps(part)}]"
    return text


class SchemaCheck(ResultValidator):
    """Fails the cell when an item violates the target's output schema (``None`` items of a
    per_user result are users without a result and are not checked)."""

    def __init__(self, label: str, schema_json: str, kind: str):
        self.label = label
        self.kind = kind
        self.valid = is_valid(schema_json)
        self.schema_json = schema_json
        self.bad = 0
        self.first: str | None = None

    def observe(self, user_id: str | None, value: object) -> None:
        if value is None and user_id is not None:
            return
        try:
            valid = self.valid(value)
        except (TypeError, ValueError):  # a value JSON cannot hold: the violation says what
            valid = False
        if not valid:
            self.bad += 1
            if self.first is None:
                where = f"user {user_id}: " if user_id is not None else ""
                self.first = where + (violation(self.schema_json, value) or "invalid")

    def finish(self) -> list[str]:
        if not self.bad:
            return []
        more = f" ({self.bad} items violate it)" if self.bad > 1 else ""
        return [f"result does not match its schema: {self.first}{more}"]


def schema_validators(target: Any) -> list[ResultValidator]:
    """The schema check of ``target`` (a :class:`~btbuild.workspace.model.Target`), if any."""
    if target.schema_json is None:
        return []
    return [SchemaCheck(target.label, target.schema_json, target.kind)]
