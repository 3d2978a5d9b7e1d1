from __future__ import annotations

import gzip
import json
import os
from datetime import date
from pathlib import Path

import pytest

from btbuild.errors import ConfigError, WorkspaceError
from btbuild.plugins import load_plugins

DAY = date(2024, 1, 2)


def workspace(tmp_path: Path, sources=None, folder=None):
    settings = {"sources": sources or {"prices": "date", "portfolio": "user"}}
    if folder is not None:
        settings["dir"] = folder
    plugins = load_plugins(
        tmp_path, ["btbuild.plugins.jsonl"], {"jsonl": settings}, entry_points=False
    )
    return plugins.root_sources()


def lines(*items) -> str:
    return "".join(json.dumps(i) + "\n" for i in items)


def put(tmp_path: Path, relative: str, text: str, packed: bool = False) -> Path:
    path = tmp_path / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if packed:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


@pytest.mark.parametrize("packed", [False, True])
def test_date_and_user_scope_plain_and_gzip(tmp_path, packed):
    suffix = ".jsonl.gz" if packed else ".jsonl"
    put(
        tmp_path,
        f"data/prices/2024-01-02{suffix}",
        lines({"key": "AAPX", "value": {"close": 1.5}}, {"key": "BBB", "value": 2}),
        packed,
    )
    put(
        tmp_path,
        f"data/portfolio/2024-01-02{suffix}",
        lines({"user": "u1", "record": {"cash": 1}}, {"user": "u2", "record": None}) + "\n",
        packed,
    )
    src = workspace(tmp_path)
    assert src["prices"].scope == "date" and src["portfolio"].scope == "user"
    assert src["prices"].available(DAY) and not src["prices"].available(date(2024, 1, 3))
    assert src["prices"].load(DAY) == {"AAPX": {"close": 1.5}, "BBB": 2}
    assert list(src["portfolio"].users(DAY)) == [("u1", {"cash": 1}), ("u2", None)]


def test_configurable_dir_and_absolute_dir(tmp_path):
    put(tmp_path, "feeds/prices/2024-01-02.jsonl", lines({"key": "a", "value": 1}))
    assert workspace(tmp_path, {"prices": "date"}, "feeds")["prices"].load(DAY) == {"a": 1}
    assert workspace(tmp_path, {"prices": "date"}, str(tmp_path / "feeds"))["prices"].available(DAY)


def test_users_out_of_order_names_file_and_line(tmp_path):
    put(
        tmp_path,
        "data/portfolio/2024-01-02.jsonl",
        lines(
            {"user": "u1", "record": 1}, {"user": "u3", "record": 1}, {"user": "u2", "record": 1}
        ),
    )
    stream = workspace(tmp_path)["portfolio"].users(DAY)
    assert next(stream) == ("u1", 1) and next(stream) == (
        "u3",
        1,
    )  # streamed: the error comes later
    with pytest.raises(
        WorkspaceError, match=r"^data/portfolio/2024-01-02.jsonl:3: user 'u2' comes after 'u3'"
    ):
        next(stream)


def test_duplicate_user_is_an_order_error(tmp_path):
    put(
        tmp_path,
        "data/portfolio/2024-01-02.jsonl",
        lines({"user": "u1", "record": 1}, {"user": "u1", "record": 2}),
    )
    with pytest.raises(WorkspaceError, match=":2: user 'u1' comes after 'u1'"):
        list(workspace(tmp_path)["portfolio"].users(DAY))


@pytest.mark.parametrize(
    ("source", "text", "message"),
    [
        (
            "portfolio",
            '{"user": "u1", "record": 1}\n{"user": "u2", "record": \n',
            r"2024-01-02.jsonl:2: not valid JSON",
        ),
        ("portfolio", '{"user": 5, "record": 1}\n', r":1: expected \{\"user\""),
        ("portfolio", "[1, 2]\n", r":1: expected a JSON object, got list"),
        (
            "prices",
            '{"key": "a", "value": 1}\n{"key": "a", "value": 2}\n',
            r":2: key 'a' given twice",
        ),
        ("prices", '{"key": "a"}\n', r":1: expected \{\"key\""),
        ("prices", '{"key": "a", "value": 1}\n{oops\n', r":2: not valid JSON"),
        ("prices", '{"key": "a", "value": NaN}\n', r":1: not valid JSON: NaN is not a JSON value"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path, source, text, message):
    put(tmp_path, f"data/{source}/2024-01-02.jsonl", text)
    src = workspace(tmp_path)[source]
    with pytest.raises(WorkspaceError, match=message) as info:
        src.load(DAY) if src.scope == "date" else list(src.users(DAY))
    assert "\n" not in str(info.value)


def test_corrupt_gzip_and_both_files(tmp_path):
    (tmp_path / "data/prices").mkdir(parents=True)
    (tmp_path / "data/prices/2024-01-02.jsonl.gz").write_bytes(b"not gzip at all")
    src = workspace(tmp_path)["prices"]
    with pytest.raises(
        WorkspaceError, match=r"data/prices/2024-01-02.jsonl.gz: cannot read root data"
    ):
        src.load(DAY)
    # a valid gzip header over damaged deflate data: a block of the reserved type 3 (zlib.error,
    # not an OSError, was an internal error)
    packed = gzip.compress(b"")[:10] + b"\x07" + bytes(64)
    (tmp_path / "data/prices/2024-01-02.jsonl.gz").write_bytes(packed)
    for read in (src.load, src.load_read):
        with pytest.raises(WorkspaceError, match="2024-01-02.jsonl.gz: cannot read root data"):
            read(DAY)
    put(tmp_path, "data/prices/2024-01-02.jsonl", "")
    with pytest.raises(WorkspaceError, match="both 2024-01-02.jsonl and 2024-01-02.jsonl.gz"):
        src.available(DAY)


def test_missing_date_is_a_clear_error(tmp_path):
    with pytest.raises(WorkspaceError, match="'portfolio' has no data for 2024-01-02"):
        list(workspace(tmp_path)["portfolio"].users(DAY))


def test_fingerprint_changes_with_the_file_and_is_cached(tmp_path, monkeypatch):
    path = put(tmp_path, "data/prices/2024-01-02.jsonl", lines({"key": "a", "value": 1}))
    put(tmp_path, "data/prices/2024-01-03.jsonl", lines({"key": "a", "value": 1}))
    src = workspace(tmp_path)["prices"]
    first = src.fingerprint(DAY)
    assert first == src.fingerprint(date(2024, 1, 3))  # same bytes, same fingerprint
    with monkeypatch.context() as patched:  # unchanged file: the cached digest, no read
        patched.setattr(Path, "open", lambda *a, **k: pytest.fail("read again"))
        assert src.fingerprint(DAY) == first
    stat = path.stat()
    path.write_text(lines({"key": "a", "value": 2}))  # same size, and its mtime put back:
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert src.fingerprint(DAY) != first  # its ctime moved (a long-lived worker must see it)
    assert workspace(tmp_path)["prices"].fingerprint(DAY) == src.fingerprint(DAY)


@pytest.mark.parametrize("packed", [False, True])
def test_reads_name_the_digest_of_exactly_the_bytes_read(tmp_path, packed):
    """load_read / users_read give the fingerprint of what was parsed: the file's digest when
    it stayed put; after a rewrite in the middle of a stream, neither the old nor the new
    file's (a build then never commits what it computed under the planned fingerprint)."""
    suffix = ".jsonl.gz" if packed else ".jsonl"
    put(tmp_path, f"data/prices/2024-01-02{suffix}", lines({"key": "a", "value": 1}), packed)
    # random records: over the reader's 1 MiB buffer even compressed
    users = [{"user": f"u{i:06d}", "record": {"pad": os.urandom(30).hex()}} for i in range(60_000)]
    path = put(tmp_path, f"data/portfolio/2024-01-02{suffix}", lines(*users), packed)
    src = workspace(tmp_path)
    assert src["prices"].load_read(DAY) == (src["prices"].fingerprint(DAY), {"a": 1})
    for shards in (1, 3):
        stream, read = src["portfolio"].users_read(DAY, 1 % shards, shards)
        assert read() is None  # nothing read yet
        assert sum(1 for _ in stream) == (60_000 if shards == 1 else pytest.approx(20_000, rel=0.1))
        assert read() == src["portfolio"].fingerprint(DAY)
    before = src["portfolio"].fingerprint(DAY)
    stream, read = src["portfolio"].users_read(DAY)
    next(stream)
    rewritten = lines(
        *({"user": u["user"], "record": {"pad": os.urandom(30).hex()}} for u in users)
    )
    with path.open("r+b") as handle:  # in place: the stream's open file sees it
        handle.write(gzip.compress(rewritten.encode()) if packed else rewritten.encode())
    try:
        list(stream)
    except WorkspaceError:  # a gzip stream cut mid-member may not even parse
        assert packed
    else:
        assert read() not in (None, before, src["portfolio"].fingerprint(DAY))


def test_a_source_without_its_own_digest_marks_data_changed_while_loaded() -> None:
    from btbuild.plugins.sources import MemorySource

    source = MemorySource("prices", "date", {DAY: {"a": 1}})
    assert source.load_read(DAY) == (source.fingerprint(DAY), {"a": 1})
    load = source.load

    def load_then_change(day):
        value = load(day)
        source.set(day, {"a": 2})
        return value

    source.load = load_then_change
    stamp, _value = source.load_read(DAY)
    assert stamp.startswith("changed while read") and stamp != source.fingerprint(DAY)
    users = MemorySource("portfolio", "user", {DAY: {"u1": 1}})
    stream, read = users.users_read(DAY)
    assert list(stream) == [("u1", 1)] and read() is None  # cannot tell: the stamps stand


def test_bad_settings(tmp_path):
    with pytest.raises(ConfigError, match=r"\[plugin.jsonl\] sources.prices = 'daily' is invalid"):
        workspace(tmp_path, {"prices": "daily"})
    with pytest.raises(ConfigError, match=r"\[plugin.jsonl\] unknown setting 'folder'"):
        load_plugins(
            tmp_path, ["btbuild.plugins.jsonl"], {"jsonl": {"folder": "x"}}, entry_points=False
        )
    with pytest.raises(ConfigError, match="source name 'Prices'"):
        workspace(tmp_path, {"Prices": "date"})
