"""``btbuild gc [--dry-run] [--as-of D]``: collect results older than their target's ttl."""

from __future__ import annotations

import json
from datetime import date

import click

from btbuild.cli.commands.build import parse_date
from btbuild.cli.options import Options


@click.command("gc")
@click.option("--dry-run", is_flag=True, help="List what would be collected, delete nothing.")
@click.option(
    "--as-of",
    "as_of",
    metavar="D",
    help="Age results as of this date (default: today); a result of date X expires when X < D - ttl_days.",
)
@click.option(
    "--format", "output", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.pass_obj
def command(options: Options, dry_run: bool, as_of: str | None, output: str) -> int:
    """Delete the shards of results older than their target's ttl_days (the records stay:
    status expired; a build that needs one recomputes it), orphaned parts of sharded cells
    and bytecode entries of no current workspace file."""
    from btbuild.execution.bytecode import prune
    from btbuild.execution.retention import collect

    when = parse_date(as_of, "--as-of") if as_of else date.today()
    with options.session() as session:
        report = collect(session.backend, session.workspace, when, dry_run=dry_run)
        bytecode = prune(session.workspace.root, dry_run=dry_run)
    verb = "would expire" if dry_run else "expired"
    if output == "json":
        rows = [{"label": label, "date": day} for label, day in report.expired]
        click.echo(
            json.dumps(
                {
                    "dry_run": dry_run,
                    "as_of": when.isoformat(),
                    verb.replace(" ", "_"): rows,
                    "shards": report.shards,
                    "orphan_parts": report.parts,
                    "bytecode_entries": bytecode,
                }
            )
        )
        return 0
    for label, (count, ttl) in report.per_target.items():
        click.echo(f"{label}: {count} result(s) older than {ttl} days")
    drop, delete = ("would drop", "would delete") if dry_run else ("dropped", "deleted")
    extra = f", {drop} {report.parts} orphaned part(s)" if report.parts else ""
    extra += f", {delete} {bytecode} unused bytecode entries" if bytecode else ""
    click.echo(
        f"gc as of {when.isoformat()}: {verb} {len(report.expired)} result(s), "
        f"{delete} {report.shards} shard(s){extra}"
    )
    return 0
