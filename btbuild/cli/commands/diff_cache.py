"""``btbuild diff-cache OTHER_CACHE PATTERN... --date D [--from D0]``: compare two caches."""

from __future__ import annotations

import json
from datetime import timedelta

import click

from btbuild.cli.commands.build import parse_date
from btbuild.cli.options import Options
from btbuild.errors import BuildFailed, UsageError
from btbuild.readers.diffcache import SAME, diff_caches, open_other, render


@click.command("diff-cache")
@click.argument("other_cache", metavar="OTHER_CACHE")
@click.argument("patterns", nargs=-1, required=True)
@click.option("--date", "end", required=True, metavar="D", help="Last date compared.")
@click.option("--from", "start", metavar="D0", help="First date (default: D alone).")
@click.option("--all", "show_same", is_flag=True, help="List equal cells too.")
@click.option(
    "--format", "output", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.pass_obj
def command(
    options: Options,
    other_cache: str,
    patterns: tuple[str, ...],
    end: str,
    start: str | None,
    show_same: bool,
    output: str,
) -> int:
    """Compare the result hashes of the matched cells in this workspace's cache and in
    OTHER_CACHE (an SQLite file, a workspace folder or firestore:PROJECT/PREFIX); exit 1 when
    any cell differs or exists in one cache only."""
    from btbuild.storage import open_backend

    last = parse_date(end, "--date")
    first = parse_date(start, "--from") if start else last
    if first > last:
        raise UsageError(f"--from {first} is after --date {last}")
    dates = [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]
    with options.session() as session:
        names = {label.split(":", 1)[1]: label for label in session.match(patterns)}
        other = open_other(other_cache, open_backend)
        try:
            diffs = diff_caches(session.backend, other, names, dates)
        finally:
            other.close()
    if output == "json":
        differing = [d.to_json() for d in diffs if show_same or d.verdict != SAME]
        same = sum(d.verdict == SAME for d in diffs)
        click.echo(json.dumps({"cells": differing, "same": same, "ok": same == len(diffs)}))
    else:
        click.echo(render(diffs, show_same=show_same))
    if any(d.verdict != SAME for d in diffs):
        raise BuildFailed(
            f"{sum(d.verdict != SAME for d in diffs)} of {len(diffs)} cells differ between the caches"
        )
    return 0
