"""Output schemas: a target's ``schema`` (JSON Schema) checked on every result item before
the cell commits.

Validation is compiled once per schema and process with ``fastjsonschema`` (it generates a
Python function per schema: see bench/bench_schemas.py for the comparison with
``jsonschema``, and docs/calculation-api.md for why); the schema itself is checked against
its meta-schema with ``jsonschema`` when the workspace loads, so a bad schema is a workspace
error (exit 2), not a failed cell. A violation fails the cell with the user, the JSON path
inside the value and what the schema wanted.
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
    default), else one line saying what is wrong and where."""
    import fastjsonschema
    import jsonschema
    from jsonschema.validators import validator_for

    if not isinstance(schema, dict):
        return f"a schema is a JSON object, got {type(schema).__name__}"
    try:
        validator_for(schema, default=jsonschema.Draft202012Validator).check_schema(schema)
        fastjsonschema.compile(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(part) for part in exc.absolute_path) or "(top level)"
        return f"at {where}: {exc.message}"
    except fastjsonschema.JsonSchemaDefinitionException as exc:
        return str(exc)
    return None


@lru_cache(maxsize=256)
def compiled(schema_json: str) -> Validate:
    """The compiled validation function of a canonical schema text (once per process)."""
    import fastjsonschema

    validate: Validate = fastjsonschema.compile(json.loads(schema_json))
    return validate


def violation(schema_json: str, value: Any) -> str | None:
    """None when ``value`` satisfies the schema, else ``"$.path: message"``."""
    import fastjsonschema

    try:
        compiled(schema_json)(value)
    except fastjsonschema.JsonSchemaValueException as exc:
        return f"{json_path(exc.name)}: {_message(exc)}"
    return None


def json_path(name: Any) -> str:
    """``$.positions[2].weight`` from fastjsonschema's ``data.positions[2].weight``."""
    text = str(name or "data")
    return "$" + text[4:] if text.startswith("data") else text


def _message(exc: Any) -> str:
    name = str(getattr(exc, "name", "") or "data")
    message = str(exc.message)
    return message.replace(name + " ", "", 1) if message.startswith(name + " ") else message


class SchemaCheck(ResultValidator):
    """Fails the cell when an item violates the target's output schema (``None`` items of a
    per_user result are users without a result and are not checked)."""

    def __init__(self, label: str, schema_json: str, kind: str):
        self.label = label
        self.kind = kind
        self.validate = compiled(schema_json)
        self.schema_json = schema_json
        self.bad = 0
        self.first: str | None = None

    def observe(self, user_id: str | None, value: object) -> None:
        if value is None and user_id is not None:
            return
        try:
            self.validate(value)
        except Exception:  # noqa: BLE001 - the message is rebuilt below, once
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
