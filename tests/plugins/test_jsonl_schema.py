"""Typed JSON Lines sources: declared schemas validate and fabricate, or one is inferred."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from btbuild.errors import ConfigError, WorkspaceError
from btbuild.plugins import load_plugins
from btbuild.plugins.jsonschemas import infer, validator
from btbuild.sim.fabricator import draw

DAY = date(2024, 1, 2)
BOOK = {
    "type": "object",
    "properties": {
        "qty": {"type": "integer", "minimum": -50, "maximum": 50},
        "px": {"type": "number", "minimum": 1, "maximum": 500},
        "side": {"enum": ["buy", "sell"]},
    },
    "required": ["qty", "px", "side"],
    "additionalProperties": False,
}


def sources(tmp_path: Path, schemas: dict[str, str] | None = None) -> dict:
    settings: dict = {"sources": {"book": "user", "quotes": "date"}}
    if schemas is not None:
        settings["schemas"] = schemas
    return load_plugins(
        tmp_path, ["btbuild.plugins.jsonl"], {"jsonl": settings}, entry_points=False
    ).root_sources()


def put(tmp_path: Path, relative: str, items: list[dict]) -> None:
    path = tmp_path / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(item) + "\n" for item in items))


def test_declared_schema_validates_real_data_and_types_fabricated_data(tmp_path: Path) -> None:
    (tmp_path / "book.json").write_text(json.dumps(BOOK))
    put(
        tmp_path,
        "data/book/2024-01-02.jsonl",
        [
            {"user": "u1", "record": {"qty": 3, "px": 10.0, "side": "buy"}},
            {"user": "u2", "record": {"qty": "3", "px": 10.0, "side": "buy"}},
        ],
    )
    book = sources(tmp_path, {"book": "book.json"})["book"]
    assert "declared schema book.json" in book.strategy_note
    with pytest.raises(WorkspaceError) as error:
        list(book.users(DAY))
    assert "data/book/2024-01-02.jsonl" in str(error.value) and ":2" in str(error.value)
    assert "record of 'u2' does not match the schema at qty" in str(error.value)
    check = validator(BOOK)
    drawn = [draw(book.strategy(), seed) for seed in range(30)]
    assert all(not list(check.iter_errors(record)) for record in drawn)
    assert len({json.dumps(record, sort_keys=True) for record in drawn}) > 10


def test_schema_settings_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        sources(tmp_path, {"book": "missing.json"})
    with pytest.raises(ConfigError, match="no source 'other'"):
        sources(tmp_path, {"other": "x.json"})
    (tmp_path / "bad.json").write_text('{"type": 12}')
    with pytest.raises(WorkspaceError, match="invalid JSON Schema for source 'book'"):
        sources(tmp_path, {"book": "bad.json"})["book"].schema()


def test_schema_is_inferred_from_the_oldest_files_and_said(tmp_path: Path) -> None:
    for day, qty in (("2024-01-02", 3), ("2024-01-03", -7), ("2024-01-09", 40)):
        put(
            tmp_path,
            f"data/book/{day}.jsonl",
            [
                {"user": "u1", "record": {"qty": qty, "px": 10.5, "side": "buy", "tags": []}},
                {"user": "u2", "record": {"qty": 1, "px": 99.0, "side": "sell", "tags": ["x"]}},
            ],
        )
    book = sources(tmp_path)["book"]
    schema = book.schema()
    assert schema["properties"]["qty"] == {"type": "integer", "minimum": -7, "maximum": 40}
    assert schema["properties"]["side"] == {"enum": ["buy", "sell"]}
    assert schema["properties"]["tags"]["maxItems"] == 1
    assert schema["required"] == ["px", "qty", "side", "tags"]
    assert "inferred from 3 file(s)" in book.strategy_note
    key = book.strategy_key()
    put(tmp_path, "data/book/2024-02-01.jsonl", [{"user": "u9", "record": {"qty": 10**6}}])
    assert sources(tmp_path)["book"].strategy_key() == key  # newer days leave it alone
    record = draw(book.strategy(), 7)
    assert set(record) == {"qty", "px", "side", "tags"} and -7 <= record["qty"] <= 40


def test_without_data_or_schema_the_source_says_it_is_untyped(tmp_path: Path) -> None:
    book = sources(tmp_path)["book"]
    assert book.schema() is None
    assert "untyped" in book.strategy_note


def test_inference_of_mappings_and_mixed_types() -> None:
    days = [{f"S{i}": {"close": float(i)} for i in range(80)}, {"S1": {"close": None}}]
    schema = infer(days)
    assert schema["type"] == "object" and "additionalProperties" in schema
    close = schema["additionalProperties"]["properties"]["close"]
    assert {"type": "null"} in close["anyOf"]
