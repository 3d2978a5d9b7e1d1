"""btbuild_cell_committed: once per committed cell, in the committing process, after the
commit is durable; changed tells a new result from an identical one; the reader is lazy."""

from __future__ import annotations

import json

import pytest

PLUGIN = """
import json, os

def btbuild_cell_committed(target, label, date, result_hash, changed, read_result, config):
    durable = None
    if target == "total":
        durable = read_result()  # the committed result is readable from here
    line = {"target": target, "label": label, "date": date.isoformat(), "hash": result_hash,
            "changed": changed, "pid": os.getpid(), "read": durable}
    with open(config.root / "committed.jsonl", "a") as out:
        out.write(json.dumps(line) + "\\n")
"""


@pytest.fixture
def hooked(ws):
    ws.edit(
        "BUILD.toml",
        'plugins = ["btbuild.plugins.jsonl"]',
        'plugins = ["btbuild.plugins.jsonl", "plugins.hook"]',
    )
    ws.write("plugins/hook.py", PLUGIN)
    return ws


def calls(ws) -> list[dict]:
    path = ws.root / "committed.jsonl"
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    path.unlink()
    return lines


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_once_per_committed_cell_and_nothing_on_a_noop_rebuild(hooked, jobs):
    report = hooked.build("--jobs", jobs)
    ran = {(c["label"], c["date"]) for c in report["cells"] if c["status"] == "ran"}
    seen = calls(hooked)
    assert sorted((c["label"], c["date"]) for c in seen) == sorted(ran)  # exactly once each
    assert all(c["changed"] for c in seen)
    backend = hooked.backend()
    for call in seen:
        record = backend.get_cell(call["target"], call["date"])
        assert call["hash"] == record.result_hash
        if call["target"] == "total":
            assert call["read"] == backend.read_result("total", call["date"])
    if jobs == "2":
        assert len({c["pid"] for c in seen}) >= 1 and all(c["pid"] for c in seen)
    hooked.build("--jobs", jobs)
    assert calls(hooked) == []  # nothing committed, nothing called


def test_changed_is_false_when_a_rerun_gives_the_same_result(hooked):
    hooked.build()
    calls(hooked)
    hooked.edit("calculations/pricing/signs.py", "> 0", "> -1")  # same verdicts: same results
    report = hooked.build()
    seen = calls(hooked)
    assert {c["target"] for c in seen} == {"sign"}
    assert [c["changed"] for c in seen] == [False] * len(seen) and len(seen) == 3
    assert {(c["label"], c["date"]) for c in report["cells"] if c["status"] == "ran"} == {
        (c["label"], c["date"]) for c in seen
    }


def test_sharded_cells_call_the_hook_once_per_cell_not_per_part(hooked):
    hooked.edit("BUILD.toml", "max_attempts = 2\n", "max_attempts = 2\nuser_shards = 2\n")
    hooked.build("--jobs", "2")
    seen = calls(hooked)
    values = [(c["target"], c["date"]) for c in seen if c["target"].startswith("value")]
    assert sorted(values) == [("value", f"2024-01-0{d}") for d in (1, 2, 3)]


def test_a_failing_hook_keeps_the_commit_and_fails_the_build(hooked):
    hooked.write(
        "plugins/hook.py", "def btbuild_cell_committed(target):\n    raise OSError('disk full')\n"
    )
    report = hooked.build("//pricing:price_level", expect=1)
    cell = next(c for c in report["cells"] if c["status"] == "ran")
    assert cell["reason"] == "commit_hook_failed"
    assert (
        "committed, but after the commit: btbuild_cell_committed: plugin 'plugins.hook' failed"
        in cell["detail"]
    )
    assert hooked.backend().read_result("price_level", cell["date"]) is not None


def test_alert_file_sink_gets_one_line_per_changed_result(ws, day_writer):
    from datetime import date

    ws.write(
        "BUILD.toml",
        (ws.root / "BUILD.toml").read_text() + '\n[alerts]\nfile = "out/alerts.jsonl"\n',
    )
    ws.edit(
        "calculations/pricing/BUILD.toml",
        'entry = "totals:total"\n',
        'entry = "totals:total"\nalert = true\n',
    )
    sink = ws.root / "out" / "alerts.jsonl"

    def lines() -> list[tuple[str, str]]:
        found = (
            [json.loads(line) for line in sink.read_text().splitlines()] if sink.exists() else []
        )
        sink.unlink(missing_ok=True)
        return sorted((m["data"]["target"], m["data"]["date"]) for m in found)

    ws.build("--jobs", "2")
    assert lines() == [("//pricing:total", f"2024-01-0{d}") for d in (1, 2, 3)]
    ws.build("--jobs", "2")
    assert lines() == []
    day_writer(ws.root, date(2024, 1, 3), price_bump=2.0)
    ws.build()
    assert lines() == [("//pricing:total", "2024-01-03")]


def test_alerts_table_needs_a_topic_or_a_file(ws):
    ws.write("BUILD.toml", (ws.root / "BUILD.toml").read_text() + "\n[alerts]\n")
    code, _, err = ws.cli("query", "//...")
    assert code == 2 and "[alerts] needs either topic" in err
    ws.edit("BUILD.toml", "[alerts]\n", "")
    ws.edit(
        "calculations/pricing/BUILD.toml",
        'entry = "totals:total"\n',
        'entry = "totals:total"\nalert = true\n',
    )
    code, _, err = ws.cli("query", "//...")
    assert code == 2 and "//pricing:total: alert = true needs an [alerts] table" in err


def test_alerts_that_failed_to_publish_are_published_by_the_next_build(ws, day_writer):
    """At least once: a sink that cannot be written leaves each alert in the cache's outbox
    (the build exits 1); a leftover stays while the sink is still broken; once it works the
    next build publishes every leftover first. An alert whose cell was committed again
    meanwhile is published ``superseded``, without its value; every line carries the
    ``alert_id`` consumers deduplicate on."""
    from datetime import date

    ws.write(
        "BUILD.toml",
        (ws.root / "BUILD.toml").read_text() + '\n[alerts]\nfile = "out/alerts.jsonl"\n',
    )
    ws.edit(
        "calculations/pricing/BUILD.toml",
        'entry = "levels:level"\n',
        'entry = "levels:level"\nalert = true\n',
    )
    sink = ws.root / "out" / "alerts.jsonl"
    sink.mkdir(parents=True)  # a directory: every write fails
    ws.build("//pricing:price_level", expect=1)
    first = {a.date: a for a in ws.backend().pending_alerts().values()}
    assert sorted(first) == ["2024-01-01", "2024-01-02", "2024-01-03"]
    day_writer(ws.root, date(2024, 1, 3), price_bump=2.0)
    report = ws.build("//pricing:price_level", expect=1)
    assert all("still pending" in line for line in report["repairs"])
    assert len(ws.backend().pending_alerts()) == 4  # the new result of 01-03 is pending too
    sink.rmdir()
    report = ws.build("//pricing:price_level")
    assert len(report["repairs"]) == 4 and ws.backend().pending_alerts() == {}
    lines = [json.loads(line) for line in sink.read_text().splitlines()]
    by_id = {line["attributes"]["alert_id"]: line["data"] for line in lines}
    assert len(by_id) == len(lines) == 4
    stale = by_id[first["2024-01-03"].alert_id]
    assert stale["superseded"] and "result" not in stale
    current = ws.backend().read_result("price_level", "2024-01-03")
    fresh = [d for d in by_id.values() if d["date"] == "2024-01-03" and not d["superseded"]]
    assert [d["result"] for d in fresh] == [current]
    assert fresh[0]["previous_result_hash"] == first["2024-01-03"].result_hash


def test_a_per_user_alert_is_superseded_once_its_cell_holds_another_result():
    """deliver() publishes an outbox entry and deletes it; a per_user result is never read
    for it (only the record's hash says whether the cell still holds it)."""
    from btbuild.execution.commits import deliver
    from btbuild.storage import MemoryBackend
    from tests.storage.test_storage_contract import D1, T0, commit_per_user

    class Sink:
        sent: list = []

        def publish(self, target, alert, value, superseded=False):
            self.sent.append((alert.result_hash, value, superseded))

    backend = MemoryBackend()
    first = commit_per_user(backend, "a", D1, {"u1": 1}, alert=True)
    [old] = backend.pending_alerts().values()
    second = commit_per_user(backend, "a", D1, {"u1": 2}, alert=True, now=T0 + 1)
    [new] = [a for a in backend.pending_alerts().values() if a.generation != old.generation]
    backend.read_expected = None  # must not be called for per_user
    deliver(backend, Sink(), None, old)
    deliver(backend, Sink(), None, new)
    assert Sink.sent == [(first.result_hash, None, True), (second.result_hash, None, False)]
    assert backend.pending_alerts() == {}


def test_read_result_never_returns_another_builders_result_under_this_hash(hooked, monkeypatch):
    """Another builder replaces the cell between the commit and the hook's read: the reader
    raises (the hook fails, the build says so) instead of handing over the other result as
    the one ``result_hash`` names."""
    from btbuild.execution import finish

    after_commit = finish.after_commit

    def replaced_first(env, target, day, record, before):
        if target.name == "total":
            lease = env.backend.acquire("total", day.isoformat(), "other-builder", 60)
            writer = env.backend.open_writer(lease, "per_date")
            writer.add({"users": -1, "total": -1.0})
            other = dict(record.components, code="other-code")
            writer.commit(composite_hash="other-key", components=other, category="pricing")
        return after_commit(env, target, day, record, before)

    monkeypatch.setattr(finish, "after_commit", replaced_first)
    report = hooked.build("//pricing:total", date="2024-01-01", expect=1)
    monkeypatch.undo()
    cells = {(c["label"], c["date"]): c for c in report["cells"]}
    total = cells[("//pricing:total", "2024-01-01")]
    assert (total["status"], total["reason"]) == ("ran", "commit_hook_failed"), total
    assert all(call["read"] != {"users": -1, "total": -1.0} for call in calls(hooked))
