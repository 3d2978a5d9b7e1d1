"""``btbuild fsck [PATTERN...] [--repair]``: check the cache file and every cell's result.

Like ``git fsck``: first the cache *file* (SQLite's own check of every page,
``PRAGMA quick_check``), then every cell of the matched targets (default ``//...``) over the
dates ``--from D0`` (default ``[workspace] start_date``) through ``--date D`` (default today)
with ``Backend.check_results``: its record is readable and agrees with its summary, its seal
fits its result fields, and every shard is present and matches its checksum. Exit 1 when
damage is found and not repaired. ``--repair`` moves a damaged file aside
(``<cache>.damaged-<UTC time>``, kept) and salvages into a fresh one every cell that still
checks out (btbuild/storage/sqlite_salvage.py), forgets each damaged cell (the next build
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
from btbuild.errors import CacheFileDamaged, UsageError
from btbuild.execution.storage_cache import found_generation
from btbuild.execution.tasks import part_of
from btbuild.session import Session


@click.command("fsck")
@click.argument("patterns", nargs=-1)
@click.option("--date", "end", metavar="D", help="Last date to check (default: today, UTC).")
@click.option("--from", "start", metavar="D0", help="First date (default: [workspace] start_date).")
@click.option(
    "--repair",
    is_flag=True,
    help="Move a damaged cache file aside and salvage what checks out; forget damaged cells "
    "(the next build rebuilds them).",
)
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
    """Check the cache file and every cell's stored result against its hashes; --repair
    salvages a damaged file and forgets damaged cells."""
    patterns = patterns or ("//...",)
    try:
        with options.session() as session:
            damage = session.backend.check_file()
            if damage is None:
                report = check(session, patterns, start, end, repair)
    except CacheFileDamaged as exc:  # on opening, or met by the check of the cells
        damage = exc
    if damage is not None:
        report = {"damaged": [], "orphan_shards_deleted": 0}
        if repair:
            from btbuild.storage.sqlite_salvage import repair as salvage

            salvaged = salvage(damage.path, damage.file_id)
            with options.session() as session:
                report = check(session, patterns, start, end, repair)
            report["salvage"] = salvaged.to_json()
        report["file"] = {"path": str(damage.path), "problem": damage.problem, "repaired": repair}
    if output == "json":
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(render(report))
    return 1 if (report["damaged"] or "file" in report) and not repair else 0


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
    damaged = _check(backend, targets, dates, repair)
    # the parts of sharded cells ([execution] user_shards), any number of parts: no target
    # of the plan, so only this check and the combine that reads one ever look at them
    parts: dict[str, str] = {}
    days: set[str] = set()
    for part, day in backend.part_cells(sorted(targets)):
        found = part_of(part)
        if found is not None and found[0] in targets and dates[0] <= day <= dates[-1]:
            parts[part] = f"{targets[found[0]]} part {found[2] + 1}of{found[3]}"
            days.add(day)
    if parts:
        damaged += _check(backend, parts, sorted(days), repair)
    orphans = backend.collect_garbage() if repair else 0
    return {
        "checked": {"targets": len(targets), "from": dates[0], "to": dates[-1]},
        "damaged": damaged,
        "orphan_shards_deleted": orphans,
    }


def _check(
    backend: Any, labels: dict[str, str], dates: list[str], repair: bool
) -> list[dict[str, Any]]:
    """The damaged cells of ``labels`` (storage name -> label) over ``dates``; with
    ``repair`` each is forgotten, only while it holds the generation read before the check
    (a build running meanwhile may have rebuilt it: its result is kept)."""
    seen = backend.get_cell_summaries(sorted(labels), dates) if repair else {}
    found = backend.check_results(sorted(labels), dates, thorough=True)
    damaged = []
    for (name, day), problem in sorted(found.items()):
        at = found_generation(seen.get((name, day)))
        repaired = bool(repair and backend.forget_result(name, day, generation=at))
        damaged.append(
            {
                "label": labels[name],
                "target": name,
                "date": day,
                "problem": problem,
                "repaired": repaired,
            }
        )
    return damaged


def render(report: dict[str, Any]) -> str:
    lines = []
    damaged_file = report.get("file")
    if damaged_file is not None and not damaged_file["repaired"]:
        return (
            f"damaged file: {damaged_file['path']}: {damaged_file['problem']}\n"
            "fsck: the cache file is damaged; `btbuild fsck --repair` (or any build) moves it "
            "aside and salvages every result that still checks out"
        )
    if damaged_file is not None:
        lines.append(f"repaired file: {damaged_file['path']}: {damaged_file['problem']}")
        lines.append(f"fsck: {report['salvage']['summary']}")
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
