"""Simulating a target alone: deps with an output schema are drawn from it."""

from __future__ import annotations

import json

import pytest

from btbuild.execution.schemas import violation
from btbuild.plugins.sources import MemorySource
from btbuild.sim.calls import is_failure
from btbuild.sim.fabricator import draw
from btbuild.sim.runner import SimRunner
from btbuild.sim.schema_values import strategy
from btbuild.workspace.config import load_workspace

SCHEMAS = [
    {
        "type": "object",
        "required": ["level"],
        "properties": {"level": {"type": "number", "minimum": 0, "maximum": 10}},
    },
    {"type": "array", "minItems": 2, "maxItems": 3, "items": {"enum": ["a", "b"]}},
    {"type": ["integer", "null"], "exclusiveMinimum": 0, "exclusiveMaximum": 5},
    {"anyOf": [{"type": "string", "minLength": 2, "maxLength": 3}, {"const": 7}]},
    {
        "type": "object",
        "properties": {
            "nested": {
                "type": "object",
                "required": ["x"],
                "properties": {"x": {"type": "boolean"}},
            }
        },
    },
]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_drawn_values_satisfy_the_schema(schema):
    text = json.dumps(schema, sort_keys=True)
    made = strategy(schema)
    values = [draw(made, seed) for seed in range(60)]
    assert all(violation(text, value) is None for value in values), values
    assert len({json.dumps(v, sort_keys=True) for v in values}) > 1  # not one fixed value


FILES = {
    "BUILD.toml": '[workspace]\nname = "t"\n',
    "calculations/a/BUILD.toml": """
[calculation.level]
entry = "m:level"
kind = "per_date"
roots = ["prices"]
schema = { type = "object", required = ["level"], properties = { level = { type = "number", minimum = 0, maximum = 10 } } }

[calculation.scores]
entry = "m:scores"
roots = ["book"]
schema = { type = "integer", minimum = 1, maximum = 3 }

[calculation.user_view]
entry = "m:user_view"
deps = [":level", ":scores"]
roots = ["book"]
""",
    "calculations/a/m.py": """
def level(ctx):
    raise RuntimeError("the upstream cannot run on fabricated prices")

def scores(ctx):
    raise RuntimeError("nor can this one")

def user_view(ctx):
    level = ctx.dep("level")["level"]
    score = ctx.dep("scores")
    assert 0 <= level <= 10 and score in (1, 2, 3, None)
    return round(level * (score or 0), 6)
""",
}


def test_alone_draws_deps_from_their_schemas(make_workspace):
    workspace = load_workspace(make_workspace(FILES))
    sources = {"prices": MemorySource("prices", "date"), "book": MemorySource("book", "user")}
    alone = SimRunner(workspace, sources, alone=True).simulate("user_view")
    outputs = [run.output for run in alone.contexts]
    assert outputs and not any(is_failure(output) for output in outputs)
    assert alone.distinct_values > 1
    together = SimRunner(workspace, sources).simulate("user_view")  # upstreams run and fail
    assert all(is_failure(run.output) for run in together.contexts)
