"""Fabricated values from a target's output schema: what a dependent sees of an upstream
when it is simulated alone (``btbuild sim --alone``), instead of the upstream's own output.

:func:`strategy` turns the JSON Schema keywords results use (``type``, ``enum``, ``const``,
``properties``, ``required``, ``items``, ``minItems``/``maxItems``, ``minimum``/``maximum``
and their exclusive forms, ``minLength``/``maxLength``, ``anyOf``/``oneOf``) into a
Hypothesis strategy; every drawn value is checked against the schema with the same
validator a build uses, and a draw that does not satisfy it (a keyword this module does not
model) is replaced by ``None`` rather than shown to the calculation as if it were valid.
Optional properties are present or absent at random, so dependents meet both.
"""

from __future__ import annotations

import json
from typing import Any

from btbuild.execution.schemas import compiled

_BOUND = 1e12  # numbers without bounds stay within what results hold in practice


def strategy(schema: Any) -> Any:
    """A Hypothesis strategy for values of ``schema`` (a dict), mostly valid by construction."""
    from hypothesis import strategies as st

    if schema is True or schema == {}:
        from btbuild.plugins.strategies import json_values

        return json_values()
    if not isinstance(schema, dict):
        return st.none()
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(list(schema["enum"]))
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return st.one_of([strategy({**schema, key: None, **option}) for option in schema[key]])
    kind = schema.get("type")
    if isinstance(kind, list):
        return st.one_of([strategy({**schema, "type": one}) for one in kind])
    maker = _MAKERS.get(kind or _guess(schema))
    return maker(schema) if maker is not None else st.none()


def _guess(schema: dict[str, Any]) -> str:
    if "properties" in schema or "required" in schema:
        return "object"
    if "items" in schema:
        return "array"
    return "null"


def _number(schema: dict[str, Any], integer: bool) -> Any:
    from hypothesis import strategies as st

    low = schema.get("minimum", schema.get("exclusiveMinimum", -_BOUND))
    high = schema.get("maximum", schema.get("exclusiveMaximum", _BOUND))
    if integer:
        low_int = int(low) + (1 if "exclusiveMinimum" in schema and "minimum" not in schema else 0)
        high_int = int(high) - (
            1 if "exclusiveMaximum" in schema and "maximum" not in schema else 0
        )
        return st.integers(min_value=low_int, max_value=high_int)
    return st.floats(
        min_value=float(low),
        max_value=float(high),
        exclude_min="exclusiveMinimum" in schema and "minimum" not in schema,
        exclude_max="exclusiveMaximum" in schema and "maximum" not in schema,
        allow_nan=False,
        allow_infinity=False,
    )


def _string(schema: dict[str, Any]) -> Any:
    from hypothesis import strategies as st

    return st.text(
        alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]),
        min_size=int(schema.get("minLength", 0)),
        max_size=int(schema.get("maxLength", max(8, int(schema.get("minLength", 0))))),
    )


def _array(schema: dict[str, Any]) -> Any:
    from hypothesis import strategies as st

    items = schema.get("items", True)
    low = int(schema.get("minItems", 0))
    high = int(schema.get("maxItems", max(low, 4)))
    return st.lists(strategy(items), min_size=low, max_size=max(low, min(high, low + 6)))


def _object(schema: dict[str, Any]) -> Any:
    from hypothesis import strategies as st

    properties = schema.get("properties") or {}
    required = [key for key in schema.get("required", []) if isinstance(key, str)]
    fixed = {key: strategy(properties.get(key, True)) for key in required}
    optional = {key: strategy(value) for key, value in properties.items() if key not in fixed}
    return st.fixed_dictionaries(fixed, optional=optional)


def _null(schema: dict[str, Any]) -> Any:
    from hypothesis import strategies as st

    return st.none()


def _boolean(schema: dict[str, Any]) -> Any:
    from hypothesis import strategies as st

    return st.booleans()


_MAKERS: dict[str, Any] = {
    "null": _null,
    "boolean": _boolean,
    "integer": lambda schema: _number(schema, integer=True),
    "number": lambda schema: _number(schema, integer=False),
    "string": _string,
    "array": _array,
    "object": _object,
}


def checked(schema_json: str, value: Any) -> Any:
    """``value`` if it satisfies the schema, else None (never show an invalid value)."""
    try:
        compiled(schema_json)(value)
    except Exception:  # noqa: BLE001 - any violation
        return None
    return value


def fabricated_output(
    schema_json: str, kind: str, users: tuple[str, ...], draw: Any, seed: Any
) -> Any:
    """An upstream's output drawn from its schema: a value (per_date) or ``{user: value}``
    (per_user); ``draw(strategy, seed)`` and ``seed(*parts)`` come from the fabricator."""
    made = strategy(json.loads(schema_json))
    if kind == "per_date":
        return checked(schema_json, draw(made, seed("schema", None)))
    return {user: checked(schema_json, draw(made, seed("schema", user))) for user in users}
