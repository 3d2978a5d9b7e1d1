"""``btbuild fsck [PATTERN...] [--repair]``: check every cell's result against its hashes.

Like ``git fsck``: every cell of the matched targets (default ``//...``) over the dates
``--from D0`` (default ``[workspace] start_date``) through ``--date D`` (default today) is
checked with ``Backend.check_results``: its record is readable and agrees with its summary,
its seal fits its result fields, and every shard is present and matches its checksum. Exit 1
when damage is found and not repaired; ``--repair`` forgets each damaged cell (the next build
rebuilds it) and deletes orphan shards.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import click

from btbuild.analysis.cells import date_range
from btbuild.cli.commands.build import parse_date
from btbuild.cli.options import Options
from btbuild.errors import UsageError
from btbuild.session import Session


@click.command("fsck")
@click.argument("patterns", nargs=-1)
@click.option("--date", "end", metavar="D", help="Last date to check (default: today, UTC).")
@click.option("--from", "start", metavar="D0", help="First date (default: [workspace] start_date).")
@click.option("--repair", is_flag=True, help="Forget damaged cells (the next build rebuilds them).")
@click.option(
    "--format", "output", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.pass_obj
def command(
    options: Options,
    patterns: tuple[str, ...],
    end: str | None,
    start: str | None,
    repair: bool,
    output: str,
) -> int:
    """Check every cell's stored result against its hashes; --repair forgets damaged cells."""
    with options.session() as session:
        report = check(session, patterns or ("//...",), start, end, repair)
    if output == "json":
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(render(report))
    return 1 if report["damaged"] and not repair else 0


def check(
    session: Session, patterns: tuple[str, ...], start: str | None, end: str | None, repair: bool
) -> dict[str, Any]:
    first = parse_date(start, "--from") if start else session.workspace.start_date
    last = parse_date(end, "--date") if end else datetime.now(timezone.utc).date()
    if first > last:
        raise UsageError(f"fsck: first date {first.isoformat()} is after --date {last.isoformat()}")
    targets = {
        session.graph.targets[label].name: label for label in sorted(session.match(patterns))
    }
    dates = [day.isoformat() for day in date_range(first, last)]
    backend = session.backend
    found = backend.check_results(sorted(targets), dates, thorough=True)
    damaged = []
    for (name, day), problem in sorted(found.items()):
        repaired = bool(repair and backend.forget_result(name, day))
        damaged.append(
            {
                "label": targets[name],
                "target": name,
                "date": day,
                "problem": problem,
                "repaired": repaired,
            }
        )
    orphans = backend.collect_garbage() if repair else 0
    return {
        "checked": {"targets": len(targets), "from": dates[0], "to": dates[-1]},
        "damaged": damaged,
        "orphan_shards_deleted": orphans,
    }


def render(report: dict[str, Any]) -> str:
    lines = []
    for cell in report["damaged"]:
        state = "forgotten, the next build rebuilds it" if cell["repaired"] else "damaged"
        lines.append(f"{state}: {cell['label']} {cell['date']}: {cell['problem']}")
    checked = report["checked"]
    scope = f"{checked['targets']} targets from {checked['from']} to {checked['to']}"
    count = len(report["damaged"])
    if not count:
        lines.append(f"fsck: checked {scope}: no damage found")
    elif any(not cell["repaired"] for cell in report["damaged"]):
        lines.append(
            f"fsck: checked {scope}: {count} damaged cell(s); `btbuild fsck --repair` or any "
            "build rebuilds them"
        )
    else:
        lines.append(f"fsck: checked {scope}: {count} damaged cell(s) repaired")
    if report["orphan_shards_deleted"]:
        lines.append(f"fsck: deleted {report['orphan_shards_deleted']} orphan shard(s)")
    return "\n".join(lines)
