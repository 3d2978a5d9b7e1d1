"""A build's steps touch the cache in order: constructing the scheduler only *begins* its
first reads (the cache query is sent before the code is hashed: Backend.start_read_checked,
start_pending_alerts), ``plan()`` only reads, and only a real build's explicit repair step deletes (a category
migration, a damaged result), reporting what it did."""

from __future__ import annotations

from datetime import date
from typing import Any

from btbuild.execution.build import BuildRequest, Scheduler
from btbuild.session import Session

# what changes a cache (btbuild/storage/base.py and the backends' writes)
CHANGES = {
    "put_cells",
    "put_cell_status",
    "acquire",
    "release",
    "open_writer",
    "migrate_category",
    "forget_result",
    "delete_target",
    "expire_result",
    "record_equivalence",
    "append_run",
}
DELETES = {"migrate_category", "forget_result", "delete_target", "expire_result"}
BEGUN_READS = {"start_read_checked", "start_pending_alerts"}  # reads sent before hashing


class Recording:
    """A backend that records the name of every method called on it."""

    def __init__(self, backend: Any):
        self._backend = backend
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._backend, name)
        if not callable(found):
            return found

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return found(*args, **kwargs)

        return call


def move_price_level(ws) -> None:
    """//pricing:price_level moves to the market package (a category migration)."""
    table = (
        '[calculation.price_level]\nentry = "levels:level"\nkind = "per_date"\nroots = ["prices"]\n'
    )
    ws.edit("calculations/pricing/BUILD.toml", table, "")
    ws.write("calculations/market/BUILD.toml", table)
    ws.write(
        "calculations/market/levels.py", (ws.root / "calculations/pricing/levels.py").read_text()
    )


def scheduler(ws, *, dry_run: bool) -> tuple[Scheduler, Recording]:
    session = Session(ws.root)
    recording = Recording(session.backend)
    session._backend = recording  # type: ignore[assignment]
    request = BuildRequest(patterns=("//...",), end=date(2024, 1, 2), dry_run=dry_run)
    return Scheduler(session, request), recording


def test_constructing_only_begins_reads_and_plan_only_reads(ws):
    ws.build(date="2024-01-02")
    move_price_level(ws)
    build, recording = scheduler(ws, dry_run=False)
    assert (
        set(recording.calls) <= BEGUN_READS
    )  # sent early; nothing read to an end, nothing changed
    build.plan()
    assert recording.calls and not CHANGES & set(recording.calls)  # it read, changed nothing
    assert build.cache.moved == {"price_level": "pricing"}
    assert ws.backend().get_cell("price_level", "2024-01-01") is not None  # nothing deleted yet
    report = build.run()
    build.backend.close()
    assert "migrate_category" in recording.calls
    assert report.repairs == [
        "//market:price_level moved from package 'pricing': "
        "2 cells of the old package deleted, it is built anew"
    ]


def test_a_dry_run_never_deletes(ws):
    ws.build(date="2024-01-02")
    move_price_level(ws)
    build, recording = scheduler(ws, dry_run=True)
    report = build.run()
    build.backend.close()
    assert not DELETES & set(recording.calls) and report.repairs == []
    assert ws.backend().get_cell("price_level", "2024-01-01").category == "pricing"
