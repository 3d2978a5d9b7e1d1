"""The fast path of the Firestore no-op check changes no verdict (btbuild/storage/firestore_check.py).

Cell documents as a commit writes them, then garbled in every way a document can be (a
field of the record row replaced by any JSON value, the row cut short or made longer, the
packed summary replaced, the inline shard or its generation changed, the text cut): the
check with its fast path gives exactly the summaries and damage the full read gives."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("msgspec")

from btbuild.storage import firestore_check, integrity  # noqa: E402 - after the skip
from btbuild.storage import records as rec  # noqa: E402
from btbuild.storage.firestore_cells import record_fields  # noqa: E402
from btbuild.storage.records import CellRecord  # noqa: E402

DATES = ("2024-01-01", "2024-01-02")


class _Backend:
    """What the check asks of a backend: no shard documents (a result not inline is missing),
    and the damage found is not read again."""

    shards = None

    def _confirmed(self, problems: dict[tuple[str, str], str]) -> dict[tuple[str, str], str]:
        return dict(problems)


def _document(index: int, status: str, shards: int) -> tuple[str, dict[str, Any]]:
    """The cell document a commit writes (a one-shard result inline), or a record without a
    result (a failure, a running attempt)."""
    target, date = f"t{index % 3}", DATES[index % 2]
    shard = f"shard {index}".encode()
    generation = f"g{index}" if shards else None
    checksums = None
    if generation is not None:
        digests = [integrity.shard_digest(shard)] * shards
        checksums = integrity.make_checksums(
            generation, f"r{index}", "per_date", shards, 3, digests
        )
    record = CellRecord(
        target=target,
        date=date,
        status=status,
        composite_hash=f"k{index}",
        components={"code": "c"},
        result_hash=f"r{index}" if shards else None,
        dep_results={"//a:b": "h"},
        category="pkg" if index % 2 else None,
        kind="per_date" if shards else None,
        generation=generation,
        shard_count=shards,
        item_count=3 if shards else 0,
        checksums=checksums,
    )
    fields: dict[str, Any] = record_fields(record)
    if shards:
        fields.update(inline=shard, inline_gen=generation)
    return f"{target}__{date}", fields


_SUMMARY = ("status", "composite_hash", "result_hash", "generation", "category")
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)


@st.composite
def garbled(draw: st.DrawFn, document: tuple[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    document_id, fields = document[0], dict(document[1])
    row = json.loads(fields["data"])
    how = draw(
        st.sampled_from(["row field", "both", "cut row", "longer", "summary", "inline", "text"])
    )
    if how in ("row field", "both"):  # both: the summary written from the garbled row
        row[draw(st.integers(0, len(row) - 1))] = draw(st.none() | JSON)
        if how == "both":
            packed = [row[rec.CELL_FIELD_ORDER.index(name)] for name in _SUMMARY]
            fields["summary"] = json.dumps(packed, separators=(",", ":"))
    elif how == "cut row":
        row = row[: draw(st.integers(0, len(row) - 1))]
    elif how == "longer":
        row.append(draw(JSON))
    elif how == "summary":
        fields["summary"] = draw(st.one_of(st.text(max_size=20), JSON.map(json.dumps), st.none()))
    elif how == "inline":
        fields[draw(st.sampled_from(["inline", "inline_gen"]))] = draw(
            st.binary(max_size=8) | st.text(max_size=4) | st.none()
        )
    fields["data"] = json.dumps(row)
    if how == "text":
        fields["data"] = fields["data"][: draw(st.integers(0, len(fields["data"])))]
    return document_id, fields


def _documents(draw: st.DrawFn) -> list[tuple[str, dict[str, Any]]]:
    documents = []
    for index in range(draw(st.integers(1, 6))):
        status = draw(st.sampled_from(rec.STATUSES))
        shards = draw(st.sampled_from([0, 1, 1, 2]))
        document = _document(index, status, shards)
        if draw(st.booleans()):
            document = draw(garbled(document))
        documents.append(document)
    return documents


@pytest.fixture(autouse=True, scope="module")
def _no_shard_documents() -> Any:
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(firestore_check, "stream_documents", lambda *args: [])
        yield


def _check(documents: list[tuple[str, dict[str, Any]]]) -> Any:
    return firestore_check._checked(_Backend(), documents, set(DATES), *DATES)  # type: ignore[arg-type]


def _check_in_full(documents: list[tuple[str, dict[str, Any]]]) -> Any:
    """:func:`_check` with every document read the full way."""
    taken = firestore_check._fast
    firestore_check._fast = lambda key, values: None  # type: ignore[assignment]
    try:
        return _check(documents)
    finally:
        firestore_check._fast = taken


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_the_fast_path_gives_every_verdict_the_full_read_gives(data: st.DataObject) -> None:
    documents = _documents(data.draw)
    assert _check(documents) == _check_in_full(documents)


def test_a_current_document_takes_the_fast_path_and_damage_is_still_found() -> None:
    """The fast path is taken (not everything sent down the full read), and it finds a
    changed inline shard and a summary that is not the record's."""
    document_id, fields = _document(1, "committed", 1)
    key = (fields["target"], fields["date"])
    assert firestore_check._fast(key, fields) is not None
    summaries, damaged = _check([(document_id, fields)])
    assert list(summaries) == [key] and damaged == {}
    changed = dict(fields, inline=b"other bytes")
    assert _check([(document_id, changed)])[1] == {key: "shard 0 of 1 does not match its checksum"}
    other = json.loads(fields["summary"])
    other[1] = "another key"
    moved = dict(fields, summary=json.dumps(other, separators=(",", ":")))
    assert firestore_check._fast(key, moved) is None
    assert _check([(document_id, moved)])[1] == {key: "its summary does not match its record"}


@pytest.mark.parametrize("summary_too", [False, True], ids=["row", "row and summary"])
@pytest.mark.parametrize("value", [None, "x", 7, 1.5, True, [], {}])
def test_each_field_of_the_row_garbled_gives_the_full_reads_verdict(
    value: Any, summary_too: bool
) -> None:
    """Every field of the row in turn replaced by a value of each JSON type, the packed summary
    left as it was or written from the garbled row (another writer): same verdicts."""
    for index in range(len(rec.CELL_FIELD_ORDER)):
        for shards in (0, 1, 2):
            document_id, fields = _document(index, "committed", shards)
            row = json.loads(fields["data"])
            row[index] = value
            fields["data"] = json.dumps(row)
            if summary_too:
                packed = [row[rec.CELL_FIELD_ORDER.index(name)] for name in _SUMMARY]
                fields["summary"] = json.dumps(packed, separators=(",", ":"))
            documents = [(document_id, fields)]
            expected = _check_in_full(documents)
            assert _check(documents) == expected, (rec.CELL_FIELD_ORDER[index], shards)
