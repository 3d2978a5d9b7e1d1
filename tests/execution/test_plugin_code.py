"""A workspace plugin's code is part of the keys of what it shapes: editing how a root source
parses its files re-runs exactly the cells reading that source (its files did not change),
editing a segment predicate re-runs exactly that segment's targets; comments and formatting
never count."""

from __future__ import annotations

import pytest

from tests.execution.conftest import Workspace
from tests.execution.test_segments import USERS, big_holders

SOURCE_PLUGIN = """\
import json
from pathlib import Path

from btbuild.plugins.sources import RootSource

FACTOR = 1.0


class Rates(RootSource):
    name = "rates"
    scope = "date"

    def __init__(self, root):
        self.folder = Path(root) / "data" / "rates"

    def available(self, day):
        return (self.folder / f"{day.isoformat()}.json").is_file()

    def fingerprint(self, day):
        return (self.folder / f"{day.isoformat()}.json").read_text()

    def load(self, day):  # how the file becomes what ctx.root("rates") holds
        raw = json.loads((self.folder / f"{day.isoformat()}.json").read_text())
        return {"usd": raw["usd"] * FACTOR}

    def strategy(self):
        from hypothesis import strategies as st

        return st.fixed_dictionaries({"usd": st.floats(0.5, 5.0)})


def btbuild_root_sources(config):
    return [Rates(config.root)]
"""

RATED = """
[calculation.rated]
entry = "rated:rated"
kind = "per_date"
roots = ["rates", "prices"]
"""


@pytest.fixture
def rated(ws: Workspace) -> Workspace:
    ws.edit(
        "BUILD.toml",
        'plugins = ["btbuild.plugins.jsonl"]',
        'plugins = ["btbuild.plugins.jsonl", "plugins.rates"]',
    )
    ws.write("plugins/rates.py", SOURCE_PLUGIN)
    for day in ("2024-01-01", "2024-01-02", "2024-01-03"):
        ws.write(f"data/rates/{day}.json", '{"usd": 2.0}')
    ws.write("calculations/rated/BUILD.toml", RATED)
    ws.write(
        "calculations/rated/rated.py",
        'def rated(ctx):\n    return ctx.root("rates")["usd"] * ctx.root("prices")["AAA"]["close"]\n',
    )
    ws.build()
    return ws


def _ran(ws: Workspace) -> set[str]:
    report = ws.build()
    return {c["label"] for c in report["cells"] if c["status"] == "ran"}


def test_editing_a_source_plugin_re_runs_exactly_the_cells_reading_its_source(rated):
    rated.edit("plugins/rates.py", '"usd": raw["usd"] * FACTOR', '"usd": raw["usd"] * FACTOR + 1')
    assert _ran(rated) == {"//rated:rated"}
    assert rated.backend().read_result("rated", "2024-01-03") == 3.0 * 12.0  # (2 + 1) * close
    # comments and formatting never count
    rated.edit(
        "plugins/rates.py", "class Rates(RootSource):", "# the rates\nclass  Rates( RootSource ):"
    )
    assert _ran(rated) == set()


def test_editing_a_segment_predicate_re_runs_exactly_its_segments_targets(ws: Workspace):
    big_holders(ws)
    ws.build()
    ws.edit("plugins/seg.py", "> 20", "> 25")  # the segment's version is not bumped
    assert _ran(ws) == {"//seg:signed_in_count"}
    result = ws.backend().read_result("signed_in_count", "2024-01-03")
    assert set(result) == set(USERS[25:])
