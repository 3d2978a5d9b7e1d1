"""`btbuild report --html`: the payload it is built from, the page, and the page in a real
browser (headless Chromium from Debian's packages, driven by Playwright)."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from tests.execution.conftest import Workspace, make_workspace

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def changed(tmp_path: Path) -> Workspace:
    """Built over three days, then `total`'s formula edited: its cells would re-run."""
    w = make_workspace(tmp_path / "ws")
    w.build()
    w.edit("calculations/pricing/totals.py", "round(", "3 + round(")
    return w


def payload_of(page: Path) -> dict:
    text = page.read_text()
    match = re.search(
        r'<script id="report-data" type="application/json">(.*?)</script>', text, re.S
    )
    assert match is not None
    return json.loads(match.group(1).replace("<\\/", "</"))


def test_report_payload_matches_status_and_the_cache(changed: Workspace, tmp_path: Path):
    out = tmp_path / "report"
    code, text, err = changed.cli("report", "--html", str(out), "--date", "2024-01-03")
    assert code == 0, err
    assert "4 targets x 3 dates, 12 cells" in text
    page = out / "index.html"
    data = payload_of(page)
    labels = [t["label"] for t in data["targets"]]
    assert data["dates"] == ["2024-01-01", "2024-01-02", "2024-01-03"]
    row = data["grid"][labels.index("//pricing:total")]
    assert row == "RRR"
    assert data["grid"][labels.index("//pricing:value")] == "..."
    # the same marks as `btbuild status`
    code, status, _ = changed.cli("status", "//...", "--date", "2024-01-03")
    for label, marks in zip(labels, data["grid"], strict=True):
        assert re.search(rf"^{re.escape(label)} +{re.escape(marks)}$", status, re.M), label
    i = labels.index("//pricing:total")
    strings = data["strings"]
    status, reason, _detail, changes = data["cells"][f"{i},0"]["d"]
    assert strings[status] == "runnable" and strings[reason] == "code_changed"
    (change,) = changes
    assert change[0] == "code" and change[2] == data["targets"][i]["components"]["code"]
    record = changed.backend().get_cell("total", "2024-01-01")
    assert change[1] == record.components["code"] != change[2]
    assert data["cells"][f"{i},0"]["r"][1] == record.result_hash
    newest_run = data["cells"][f"{i},0"]["u"][0]
    assert strings[newest_run[2]] == "new" and strings[newest_run[1]] == "committed"
    assert data["builds"] and data["builds"][0]["cells"] == 12
    # self-contained: nothing fetched from a network
    html = page.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<script src" not in html and "<link" not in html


def test_report_of_an_empty_cache_and_bad_folder(tmp_path: Path):
    w = make_workspace(tmp_path / "ws")
    out = tmp_path / "r"
    code, _, err = w.cli("report", "--html", str(out), "//pricing:value", "--date", "2024-01-02")
    assert code == 0, err
    data = payload_of(out / "index.html")
    assert data["grid"] == ["NN"] and data["builds"] == []
    (tmp_path / "file").write_text("x")
    code, _, err = w.cli("report", "--html", str(tmp_path / "file"), "--date", "2024-01-02")
    assert code == 2 and "is not a folder" in err


@pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="needs Chromium (apt-get install -y chromium; .ci/run installs it)",
)
def test_report_in_headless_chromium(changed: Workspace, tmp_path: Path):
    assert CHROMIUM is not None, "CI must have Chromium: .ci/run installs it with apt-get"
    sync_api = pytest.importorskip("playwright.sync_api") if not os.environ.get("CI") else None
    if sync_api is None:
        import playwright.sync_api as sync_api
    out = tmp_path / "report"
    code, _, err = changed.cli("report", "--html", str(out), "--date", "2024-01-03")
    assert code == 0, err
    data = payload_of(out / "index.html")
    labels = [t["label"] for t in data["targets"]]
    total = labels.index("//pricing:total")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto((out / "index.html").as_uri())
            page.wait_for_selector("body[data-ready=true]")
            assert errors == []
            # the grid: one cell per target and date, coloured like the legend
            assert page.locator(".cell").count() == len(labels) * len(data["dates"])
            colours = page.evaluate(
                """() => Object.fromEntries([...document.querySelectorAll('.legend-item')].map(
                    i => [i.dataset.mark, getComputedStyle(i.querySelector('.swatch')).backgroundColor]))"""
            )
            assert set(colours) == {".", "R"}
            for m in (".", "R"):
                cell = page.locator(f'.cell[data-m="{m}"]').first
                assert cell.evaluate("c => getComputedStyle(c).backgroundColor") == colours[m]
            assert colours["."] != colours["R"]
            # click an R cell: the panel names the changed hash
            page.click(f'.cell[data-i="{total}"][data-j="1"]')
            changed_row = page.locator('#panel tr.changed[data-component="code"]')
            assert changed_row.count() == 1
            assert data["targets"][total]["components"]["code"] in changed_row.inner_text()
            assert "CHANGED" in changed_row.inner_text()
            assert "//pricing:total 2024-01-02" in page.inner_text("#panel h3")
            # click a graph node: the grid shows that target only
            page.click('#graph-svg .node[data-label="//pricing:sign"]')
            visible = page.locator(".row:not(.head):not(.hidden)")
            assert visible.count() == 1
            assert visible.first.get_attribute("data-label") == "//pricing:sign"
            page.click("#clear-target")
            assert page.locator(".row:not(.head):not(.hidden)").count() == len(labels)
            # the status filter keeps rows holding that mark
            page.select_option("#filter-status", "R")
            assert page.locator(".row:not(.head):not(.hidden)").count() == sum(
                "R" in row for row in data["grid"]
            )
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()
    assert (tmp_path / "report.png").stat().st_size > 10_000
