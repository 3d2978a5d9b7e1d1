"""A build decides its later groups from the cache as it read it when it started; another
builder may commit one of those cells meanwhile (the time its earlier groups run, a verdict
of the sim judge, a wait). A cell the build then skips (up to date, early cutoff) keeps the
other builder's result, computed from other inputs: before, the build ended exit 0 with it
(reproduced with real processes: builder A's judge proving a refactor cosmetic while builder
B of other code rebuilt value, total and sign; A re-ran value and skipped total as an early
cutoff, leaving B's total - the sum of B's values - beside A's values). The build now reads
its skipped cells' result hashes again at the end and plans again those that moved."""

from __future__ import annotations

from typing import Any

import pytest

from btbuild.execution.build import Scheduler
from tests.execution.conftest import Workspace

DAY = "2024-01-01"


def _other_builders_total(backend: Any) -> None:
    """Another builder's total of DAY, computed from another value (other code): its
    inputs name that value's result, its content differs."""
    lease = backend.acquire("total", DAY, "other-builder", 60)
    before = lease.previous
    writer = backend.open_writer(lease, "per_date")
    writer.add({"users": 30, "total": -1.0})
    writer.commit(
        composite_hash="other-key",
        components=before.components,
        code_hash=before.code_hash,
        dep_results={label: "0" * 32 for label in before.dep_results},
        root_fingerprints=before.root_fingerprints,
        category="pricing",
    )


def test_a_cell_another_builder_commits_after_the_read_is_not_skipped_from_it(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws.build(date=DAY)
    expected = ws.backend().read_result("total", DAY)
    portfolio = ws.root / "data" / "portfolio" / f"{DAY}.jsonl"  # re-ingested: value re-runs,
    portfolio.write_text(portfolio.read_text().replace('"record": {', '"record": {"note": 1, '))
    finish = Scheduler._finish
    injected = []

    def finish_then_other_builder(self: Any, group: Any, outcomes: Any, report: Any) -> None:
        finish(self, group, outcomes, report)
        if not injected and any(o.name == "value" and o.status == "ran" for o in outcomes):
            injected.append(group)  # value ran again (same values): total decided next
            _other_builders_total(self.backend)

    monkeypatch.setattr(Scheduler, "_finish", finish_then_other_builder)
    report = ws.build(date=DAY)
    monkeypatch.undo()
    assert injected
    cells = ws.cells(report)
    assert cells[("//pricing:value", DAY)] == ("ran", "roots_changed"), cells
    backend = ws.backend()
    assert backend.read_result("total", DAY) == expected, ws.cells(report)
    assert backend.get_cell("total", DAY).composite_hash != "other-key"
    again = ws.build(date=DAY)
    assert again["summary"]["ran"] == 0, ws.cells(again)
