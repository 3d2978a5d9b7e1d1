"""Hypothesis strategies from JSON Schemas.

``hypothesis-jsonschema`` is the reference implementation, but its object strategy relies on a
Hypothesis internal (``many.more()``) that current Hypothesis releases removed, so every
schema with an object fails to draw. The keywords sources use - and everything
:func:`~btbuild.plugins.jsonschemas.infer` writes - are compiled here: ``type``, ``enum``,
``const``, ``anyOf``/``oneOf``, ``properties``/``required``/``additionalProperties``/
``min``/``maxProperties``, ``items``/``prefixItems``/``min``/``maxItems``, numeric bounds
(inclusive and exclusive), string lengths, ``pattern`` and the ``date``/``date-time``
formats. A schema using other keywords at a leaf is handed to ``hypothesis-jsonschema``
(which handles leaves fine); the caller filters every value through the validator anyway.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from hypothesis import strategies as st

_SIMPLE = {
    "type",
    "enum",
    "const",
    "anyOf",
    "oneOf",
    "properties",
    "required",
    "additionalProperties",
    "minProperties",
    "maxProperties",
    "items",
    "prefixItems",
    "minItems",
    "maxItems",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "format",
    "title",
    "description",
    "$schema",
    "$id",
    "default",
    "examples",
}
MAX_EXTRA_KEYS = 4
MAX_ITEMS = 12


def compile_schema(schema: Any) -> st.SearchStrategy[Any]:
    if schema is True or schema == {}:
        from btbuild.plugins.strategies import json_values

        return json_values()
    if schema is False:
        return st.nothing()
    if not isinstance(schema, dict) or not set(schema) <= _SIMPLE:
        from hypothesis_jsonschema import from_schema

        return from_schema(schema, allow_x00=False)
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(list(schema["enum"]))
    for keyword in ("anyOf", "oneOf"):
        if keyword in schema:
            rest = {k: v for k, v in schema.items() if k != keyword}
            return st.one_of([compile_schema({**rest, **part}) for part in schema[keyword]])
    kinds = schema.get("type")
    if kinds is None:
        kinds = _implied(schema)
    if isinstance(kinds, list):
        return st.one_of([compile_schema({**schema, "type": kind}) for kind in kinds])
    return _typed(kinds, schema)


def _implied(schema: dict[str, Any]) -> list[str]:
    if "properties" in schema or "additionalProperties" in schema:
        return ["object"]
    if "items" in schema or "prefixItems" in schema:
        return ["array"]
    return ["null", "boolean", "integer", "number", "string", "array", "object"]


def _typed(kind: str, schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    if kind == "null":
        return st.none()
    if kind == "boolean":
        return st.booleans()
    if kind in ("integer", "number"):
        return _number(kind, schema)
    if kind == "string":
        return _string(schema)
    if kind == "array":
        return _array(schema)
    if kind == "object":
        return _object(schema)
    return st.nothing()


def _number(kind: str, schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    low, high = schema.get("minimum"), schema.get("maximum")
    low_open, high_open = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if kind == "integer":
        lo = int(low) if low is not None else None
        hi = int(high) if high is not None else None
        if low_open is not None:
            lo = max(lo if lo is not None else int(low_open) + 1, int(low_open) + 1)
        if high_open is not None:
            hi = min(hi if hi is not None else int(high_open) - 1, int(high_open) - 1)
        return st.integers(lo, hi)
    return st.floats(
        min_value=low if low is not None else low_open,
        max_value=high if high is not None else high_open,
        exclude_min=low is None and low_open is not None,
        exclude_max=high is None and high_open is not None,
        allow_nan=False,
        allow_infinity=False,
    )


def _string(schema: dict[str, Any]) -> st.SearchStrategy[str]:
    fmt = schema.get("format")
    if fmt == "date":
        return st.dates(date(2000, 1, 1), date(2035, 12, 31)).map(date.isoformat)
    if fmt == "date-time":
        return st.datetimes(datetime(2000, 1, 1), datetime(2035, 12, 31)).map(
            lambda d: d.isoformat() + "Z"
        )
    low, high = schema.get("minLength", 0), schema.get("maxLength")
    if "pattern" in schema:
        text = st.from_regex(schema["pattern"])
        return text.filter(lambda s: low <= len(s) <= (high if high is not None else len(s)))
    return st.text(min_size=low, max_size=high if high is not None else max(low, 12))


def _array(schema: dict[str, Any]) -> st.SearchStrategy[list[Any]]:
    low = schema.get("minItems", 0)
    high = schema.get("maxItems", max(low, MAX_ITEMS))
    prefix = [compile_schema(part) for part in schema.get("prefixItems", [])]
    items = schema.get("items", True)
    rest = compile_schema(items) if items is not False else st.nothing()
    head = st.tuples(*prefix).map(list) if prefix else st.just([])
    return st.builds(
        lambda first, more: (first + more)[: max(high, len(first))],
        head,
        st.lists(rest, min_size=max(0, low - len(prefix)), max_size=max(0, high - len(prefix))),
    )


def _object(schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    properties = schema.get("properties", {})
    required = [key for key in schema.get("required", []) if key in properties]
    optional = {key: value for key, value in properties.items() if key not in required}
    extra = schema.get("additionalProperties", True)
    low = schema.get("minProperties", 0)
    high = schema.get("maxProperties")
    fixed = st.fixed_dictionaries(
        {key: compile_schema(properties[key]) for key in required},
        optional={key: compile_schema(value) for key, value in optional.items()},
    )
    if extra is False:
        base = fixed
    else:
        names = st.text(min_size=1, max_size=8).filter(lambda name: name not in properties)
        more = st.dictionaries(names, compile_schema(extra), max_size=MAX_EXTRA_KEYS + low)
        base = st.builds(lambda known, added: {**added, **known}, fixed, more)
    return base.filter(lambda value: len(value) >= low and (high is None or len(value) <= high))


__all__ = ["compile_schema"]
