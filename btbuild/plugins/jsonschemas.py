"""JSON Schemas for JSON Lines sources: declared, or inferred from the real files.

A schema describes what a source gives a calculation: the day's value (the object of every
key to its value) for a date-scope source, one user's record for a user-scope source. It is
used twice: real data is validated against a declared schema (``jsonschema``), and fabricated
data is drawn from it (``hypothesis-jsonschema``), so simulations see values of the right
types, ranges, key sets and list lengths.

Without a declared schema one is inferred from the *oldest* files of the source (the first
``INFER_FILES`` days, at most ``INFER_LINES`` lines each; old days change least, so the
inferred schema - part of the SimHash registry key - stays stable as data grows):

* numbers: ``integer`` or ``number`` with the observed minimum and maximum;
* strings: an ``enum`` of the observed values when there are few, else length bounds;
* lists: the union of their items' schemas, with the observed length bounds;
* objects: a record (the observed keys as properties, those always present required, no
  others) when its keys repeat across values, or a mapping (every observed key optional,
  at most ``MAX_PROPERTIES``) otherwise;
* several types: ``anyOf``; ``null`` when seen.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

INFER_FILES = 3
INFER_LINES = 200
MAX_ENUM = 12
MAX_PROPERTIES = 64


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def infer(values: Iterable[Any]) -> dict[str, Any]:
    """A JSON Schema every value of ``values`` satisfies (see the module docstring)."""
    groups: dict[str, list[Any]] = {}
    for value in values:
        groups.setdefault(_kind(value), []).append(value)
    if "integer" in groups and "number" in groups:
        groups["number"] += groups.pop("integer")
    schemas = [_infer_kind(kind, items) for kind, items in sorted(groups.items())]
    if not schemas:
        return {}
    return schemas[0] if len(schemas) == 1 else {"anyOf": schemas}


def _infer_kind(kind: str, items: list[Any]) -> dict[str, Any]:
    if kind in ("null", "boolean"):
        return {"type": kind}
    if kind in ("integer", "number"):
        finite = [float(x) for x in items if math.isfinite(float(x))]
        low, high = min(finite, default=0.0), max(finite, default=0.0)
        if kind == "integer":
            return {"type": "integer", "minimum": int(low), "maximum": int(high)}
        return {"type": "number", "minimum": low, "maximum": high}
    if kind == "string":
        distinct = sorted(set(items))
        if len(distinct) <= MAX_ENUM:
            return {"enum": distinct}
        lengths = [len(s) for s in items]
        return {"type": "string", "minLength": min(lengths), "maxLength": max(lengths)}
    if kind == "array":
        lengths = [len(x) for x in items]
        schema: dict[str, Any] = {
            "type": "array",
            "minItems": min(lengths),
            "maxItems": max(lengths),
        }
        elements = [element for x in items for element in x]
        if elements:
            schema["items"] = infer(elements)
        return schema
    return _infer_objects(items)


def _infer_objects(items: list[dict[str, Any]]) -> dict[str, Any]:
    keys: dict[str, list[Any]] = {}
    for item in items:
        for key, value in item.items():
            keys.setdefault(key, []).append(value)
    always = sorted(k for k, found in keys.items() if len(found) == len(items))
    if len(keys) > MAX_PROPERTIES:  # a big mapping (ids -> values): one schema for all values
        sizes = [len(item) for item in items]
        return {
            "type": "object",
            "additionalProperties": infer(v for item in items for v in item.values()),
            "minProperties": min(sizes),
            "maxProperties": max(sizes),
        }
    return {
        "type": "object",
        "properties": {key: infer(found) for key, found in sorted(keys.items())},
        "required": always,
        "additionalProperties": False,
    }


def validator(schema: dict[str, Any]) -> Any:
    """A ``jsonschema`` validator for ``schema`` (raises ``SchemaError`` when it is invalid)."""
    import jsonschema

    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def first_error(checker: Any, value: Any) -> str | None:
    """The first way ``value`` breaks the schema, in one line; None when it is valid."""
    error = next(iter(checker.iter_errors(value)), None)
    if error is None:
        return None
    where = "/".join(str(part) for part in error.absolute_path) or "(top)"
    return f"at {where}: {error.message[:160]}"


def strategy(schema: dict[str, Any]) -> Any:
    """A Hypothesis strategy drawing JSON values that satisfy ``schema`` (checked with the
    validator, so a keyword drawn loosely never lets an invalid value through)."""
    from btbuild.plugins.schema_strategies import compile_schema

    checker = validator(schema)
    return compile_schema(schema).filter(checker.is_valid)


def schema_key(schema: dict[str, Any]) -> str:
    from btbuild.hashing.digest import hash_json

    return hash_json(json.loads(json.dumps(schema, sort_keys=True)))


__all__ = ["first_error", "infer", "schema_key", "strategy", "validator"]
