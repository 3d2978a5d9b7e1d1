"""``btbuild report --html DIR [PATTERN...] [--from D0] [--date D]``: a static HTML report."""

from __future__ import annotations

from datetime import date as date_type
from pathlib import Path

import click

from btbuild.cli.commands.build import parse_date
from btbuild.cli.options import Options
from btbuild.errors import UsageError
from btbuild.readers.report import ReportRequest, collect
from btbuild.readers.report_html import write_report


@click.command("report")
@click.argument("patterns", nargs=-1)
@click.option(
    "--html", "folder", required=True, metavar="DIR", help="Folder to write index.html into."
)
@click.option("--date", "end", metavar="D", help="Last date shown (default: today).")
@click.option("--from", "start", metavar="D0", help="First date (default: [workspace] start_date).")
@click.pass_obj
def command(
    options: Options, patterns: tuple[str, ...], folder: str, end: str | None, start: str | None
) -> int:
    """Write a self-contained HTML page (no network needed) with the targets x dates grid,
    each cell's inputs hash by hash, its last runs and result, the dependency graph and the
    newest builds' timings, for the matched targets (every target without a PATTERN)."""
    last = parse_date(end, "--date") if end else date_type.today()
    first = parse_date(start, "--from") if start else None
    out = Path(folder)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--html {folder}: exists and is not a folder")
    with options.session() as session:
        payload = collect(session, ReportRequest(patterns or ("//...",), last, first))
    page = write_report(payload, out)
    cells = len(payload["targets"]) * len(payload["dates"])
    click.echo(
        f"report: {page} ({len(payload['targets'])} targets x {len(payload['dates'])} dates, {cells} cells)"
    )
    return 0
