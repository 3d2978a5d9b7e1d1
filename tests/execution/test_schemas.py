"""Output schemas: checked on every item before commit; a violation fails the cell naming
the user and the JSON path; a bad schema is a workspace error; query prints a schema."""

from __future__ import annotations

import json

BUILD = """
[calculation.shaped]
entry = "shaped:shaped"
roots = ["portfolio", "prices"]
schema = { type = "object", required = ["value", "positions"], properties = { value = { type = "number", minimum = 0 }, positions = { type = "array", items = { type = "object", properties = { symbol = { type = "string" }, quantity = { type = "integer" } } } } } }

[calculation.summary]
entry = "shaped:summary"
kind = "per_date"
deps = [":shaped"]
schema = "schemas/summary.json"
"""

CODE = """
def shaped(ctx):
    positions = ctx.user["portfolio"]["positions"]
    if ctx.user.id == "u001":
        return None  # no result for this user: not checked
    return {"value": sum(p["quantity"] for p in positions), "positions": positions}

def summary(ctx):
    return {"users": len(ctx.dep("shaped"))}
"""

SUMMARY = {"type": "object", "required": ["users"], "properties": {"users": {"type": "integer"}}}


def _setup(ws):
    ws.write("calculations/shape/BUILD.toml", BUILD)
    ws.write("calculations/shape/shaped.py", CODE)
    ws.write("schemas/summary.json", json.dumps(SUMMARY))


def test_valid_results_commit(ws):
    _setup(ws)
    report = ws.build("//shape:*")
    assert ws.cells(report)[("//shape:summary", "2024-01-03")][0] == "ran"
    assert ws.backend().read_result("summary", "2024-01-03") == {"users": 29}


def test_a_violation_fails_the_cell_naming_the_user_and_the_json_path(ws):
    _setup(ws)
    ws.edit(
        "calculations/shape/shaped.py",
        '"positions": positions}',
        '"positions": positions + [{"symbol": "X", "quantity": 1.5}]}',
    )
    report = ws.build("//shape:shaped", expect=1)
    cell = next(c for c in report["cells"] if c["label"] == "//shape:shaped")
    assert cell["status"] == "failed"
    assert (
        '//shape:shaped: check failed: result does not match its schema: user u002: $.positions[1].quantity: 1.5 is not of type "integer" (29 items violate it)'
        in cell["detail"]
    ), cell["detail"]
    assert ws.backend().read_result("shaped", "2024-01-01") is None  # nothing committed


def test_per_date_violation_and_file_schema(ws):
    _setup(ws)
    ws.write(
        "schemas/summary.json", json.dumps({**SUMMARY, "properties": {"users": {"type": "string"}}})
    )
    report = ws.build("//shape:summary", expect=1)
    cell = next(
        c for c in report["cells"] if c["label"] == "//shape:summary" and c["status"] == "failed"
    )
    assert 'result does not match its schema: $.users: 29 is not of type "string"' in cell["detail"]


def test_a_bad_schema_is_a_workspace_error(ws):
    _setup(ws)
    ws.write("schemas/summary.json", json.dumps({"type": "objet"}))
    code, _, err = ws.cli("build", "//...", "--date", "2024-01-03")
    assert code == 2
    assert (
        "calculations/shape/BUILD.toml" in err
        and "//shape:summary: schema is not a valid JSON Schema" in err
    )
    ws.write("schemas/summary.json", "{not json")
    code, _, err = ws.cli("query", "//...")
    assert code == 2 and "schema file schemas/summary.json is not JSON" in err
    ws.edit(
        "calculations/shape/BUILD.toml",
        'schema = "schemas/summary.json"',
        'schema = "../outside.json"',
    )
    code, _, err = ws.cli("query", "//...")
    assert code == 2 and "must be a .json file inside the workspace" in err


def test_query_prints_a_targets_schema(ws):
    _setup(ws)
    code, out, _ = ws.cli("query", "//shape:summary", "--output", "schema")
    assert code == 0 and json.loads(out) == {"//shape:summary": SUMMARY}
    code, out, _ = ws.cli("query", "deps(//shape:summary)", "--output", "schema")
    schemas = json.loads(out)
    assert schemas["//shape:shaped"]["required"] == ["value", "positions"]
    assert set(schemas) == {"//shape:shaped", "//shape:summary"}
    code, out, _ = ws.cli("query", "//pricing:value", "--output", "schema")
    assert json.loads(out) == {"//pricing:value": None}  # no schema declared


def test_a_changed_schema_rechecks_stored_results_and_formatting_does_not(ws):
    """A stored result was checked against its build's schema only: tightening the schema
    re-runs the target, so a result that now violates it fails instead of staying committed;
    dependents re-run only if the result differs; reformatting the file re-runs nothing."""
    _setup(ws)
    ws.build("//shape:*")
    ws.write("schemas/summary.json", json.dumps(SUMMARY, indent=4, sort_keys=False))
    again = ws.cells(ws.build("//shape:*"))
    assert again[("//shape:summary", "2024-01-03")][0] == "skipped"
    loosened = {**SUMMARY, "properties": {"users": {"type": "integer", "minimum": 0}}}
    ws.write("schemas/summary.json", json.dumps(loosened))
    cells = ws.cells(ws.build("//shape:*"))
    assert cells[("//shape:summary", "2024-01-03")][0] == "ran"
    assert cells[("//shape:shaped", "2024-01-03")][0] == "skipped"  # its schema is unchanged
    tightened = {**SUMMARY, "properties": {"users": {"type": "integer", "maximum": 10}}}
    ws.write("schemas/summary.json", json.dumps(tightened))
    report = ws.build("//shape:summary", expect=1)
    failed = [c for c in report["cells"] if c["label"] == "//shape:summary"]
    assert failed and all(c["status"] == "failed" for c in failed)
    assert "$.users: 29 is greater than the maximum of 10" in failed[-1]["detail"], failed[-1]


def test_violation_messages_stay_one_short_line():
    from btbuild.execution.schemas import MESSAGE_LIMIT, SchemaCheck, violation

    schema = json.dumps({"type": "array", "items": {"type": "string"}}, sort_keys=True)
    huge = {f"key{i}": list(range(50)) for i in range(200)}  # quoted by the validator
    message = violation(schema, huge)
    assert message is not None and message.startswith("$: ") and "\n" not in message
    assert len(message) <= MESSAGE_LIMIT + 3
    assert violation(schema, ["a", 3]) == '$[1]: 3 is not of type "string"'
    check = SchemaCheck("//p:t", schema, "per_user")
    check.observe("u1", ["fine"])
    check.observe("u2", {1, 2})  # not a JSON value at all: a violation, not a crash
    (problem,) = check.finish()
    assert problem.startswith("result does not match its schema: user u2: $")
