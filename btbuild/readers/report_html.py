"""Render the report payload (:func:`btbuild.readers.report.collect`) as one static page.

The page is self-contained: its CSS, its script, the data and the dependency graph (an SVG
drawn here, layered by pass) are inlined, so it works from ``file://``, behind any static
server and offline. Nothing is fetched from a network.
"""

from __future__ import annotations

import html
import json
from importlib import resources
from pathlib import Path
from typing import Any

NODE_WIDTH = 190
NODE_HEIGHT = 22
COLUMN_GAP = 60
ROW_GAP = 10
MARGIN = 10


def graph_svg(targets: list[dict[str, Any]]) -> str:
    """The dependency graph of the report's targets: one column per pass, an edge from each
    dep to its dependent; each node carries ``data-label`` (the page filters on click)."""
    columns: dict[int, list[dict[str, Any]]] = {}
    for target in targets:
        columns.setdefault(target["pass"], []).append(target)
    where: dict[str, tuple[int, int]] = {}
    for column, number in enumerate(sorted(columns)):
        for row, target in enumerate(columns[number]):
            x = MARGIN + column * (NODE_WIDTH + COLUMN_GAP)
            y = MARGIN + row * (NODE_HEIGHT + ROW_GAP)
            where[target["label"]] = (x, y)
    width = MARGIN * 2 + max(len(columns), 1) * (NODE_WIDTH + COLUMN_GAP) - COLUMN_GAP
    tallest = max((len(c) for c in columns.values()), default=1)
    height = MARGIN * 2 + tallest * (NODE_HEIGHT + ROW_GAP) - ROW_GAP
    edges = []
    for target in targets:
        x2, y2 = where[target["label"]]
        for dep in target["deps"]:
            if dep not in where:
                continue
            x1, y1 = where[dep]
            start_x, start_y = x1 + NODE_WIDTH, y1 + NODE_HEIGHT // 2
            end_y = y2 + NODE_HEIGHT // 2
            bend = (x2 - start_x) / 2
            edges.append(
                f'<path class="edge" data-from="{html.escape(dep)}" '
                f'data-to="{html.escape(target["label"])}" '
                f'd="M{start_x:.0f},{start_y:.0f} C{start_x + bend:.0f},{start_y:.0f} '
                f'{x2 - bend:.0f},{end_y:.0f} {x2:.0f},{end_y:.0f}"/>'
            )
    nodes = []
    for target in targets:
        x, y = where[target["label"]]
        label = html.escape(target["label"])
        shown = target["label"] if len(target["label"]) <= 28 else "…" + target["label"][-27:]
        nodes.append(
            f'<g class="node" data-label="{label}" transform="translate({x},{y})">'
            f"<title>{label} (pass {target['pass']}, {target['kind']})</title>"
            f'<rect width="{NODE_WIDTH}" height="{NODE_HEIGHT}" rx="4"/>'
            f'<text x="6" y="15">{html.escape(shown)}</text></g>'
        )
    return (
        f'<svg id="graph-svg" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}">'
        + "".join(edges)
        + "".join(nodes)
        + "</svg>"
    )


def _asset(name: str) -> str:
    return resources.files("btbuild.readers").joinpath(f"assets/{name}").read_text("utf-8")


def render_page(payload: dict[str, Any]) -> str:
    """The whole page as text."""
    data = json.dumps(payload, separators=(",", ":"), sort_keys=True)
    data = data.replace("</", "<\\/")  # the data sits inside a <script> element
    title = f"btbuild report: {payload['workspace']}"
    if payload["dates"]:
        title += f" {payload['dates'][0]} .. {payload['dates'][-1]}"
    page = _asset("report.html")
    return (
        page.replace("{{TITLE}}", html.escape(title))
        .replace("{{CSS}}", _asset("report.css"))
        .replace("{{GRAPH}}", graph_svg(payload["targets"]))
        .replace("{{SCRIPT}}", _asset("report.js"))
        .replace("{{DATA}}", data)
    )


def write_report(payload: dict[str, Any], folder: Path) -> Path:
    """Write ``index.html`` into ``folder`` (created if needed) atomically; its path."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "index.html"
    partial = folder / ".index.html.partial"
    partial.write_text(render_page(payload), encoding="utf-8")
    partial.replace(target)
    return target
