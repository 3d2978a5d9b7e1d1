"""Two builders on one cache, deterministically interleaved in one process (issue 12).

The real-process stress tests are in test_stress.py (slow); here each race is staged step by
step: one builder reads its plan, another commits meanwhile, then the first one runs.
"""

from __future__ import annotations

from datetime import date

from btbuild.execution.build import BuildRequest, Scheduler
from btbuild.session import Session

V, T, S = "//pricing:value", "//pricing:total", "//pricing:sign"
DAY = "2024-01-02"


def scheduler(ws, *patterns: str, end: str = DAY, **options) -> Scheduler:
    request = BuildRequest(patterns=patterns or ("//...",), end=date.fromisoformat(end), **options)
    return Scheduler(Session(ws.root), request, **options.pop("hooks", {}))


def rerun_needed(ws, end: str = DAY) -> list[tuple[str, str, str]]:
    """Cells a fresh dry run would run: what ``btbuild status`` shows as not up to date."""
    report = ws.build("--dry-run", date=end)
    return [
        (c["label"], c["date"], c["reason"]) for c in report["cells"] if c["status"] == "runnable"
    ]


def change_root_target(ws) -> None:
    ws.edit("calculations/pricing/calcs.py", "return sum(", "return 2 * sum(")


def test_a_root_target_committed_by_another_builder_after_the_plan_is_read(ws):
    """The race of issue 12: builder A reads its plan (cell summaries) for //..., builder B
    then builds the changed root target alone, then A runs. A must decide the root cell from
    the record it reads (B's new result), so its dependents re-run on the new upstream."""
    ws.build(date=DAY)
    change_root_target(ws)
    first = scheduler(ws, "//...")  # the summaries are read here: the old result of value
    assert ws.cells(ws.build("//pricing:value", date=DAY))[(V, DAY)] == ("ran", "code_changed")
    report = first.run()
    first.session.close()
    cells = {(c.label, c.date.isoformat()): (c.status, c.reason) for c in report.cells}
    assert cells[(V, DAY)][0] == "skipped"
    assert cells[(T, DAY)] == ("ran", "deps_changed")
    assert rerun_needed(ws) == []
    backend = ws.backend()
    value = backend.get_cell("value", DAY)
    assert backend.get_cell("total", DAY).dep_results[V] == value.result_hash
