"""``btbuild log [PATTERN...] [--date D | --from D0] [--last N] [--run RUN_ID]``: the run log."""

from __future__ import annotations

import json

import click

from btbuild.cli.commands.build import parse_date
from btbuild.cli.options import Options
from btbuild.errors import UsageError
from btbuild.readers.runlog import LogQuery, read_log, render, to_json


@click.command("log")
@click.argument("patterns", nargs=-1)
@click.option("--date", "day", metavar="D", help="Only attempts of cells of this date.")
@click.option("--from", "start", metavar="D0", help="Only attempts of cells dated D0 or later.")
@click.option("--last", default=20, show_default=True, type=int, help="How many attempts.")
@click.option("--run", "run_id", metavar="RUN_ID", help="Only the attempts of this build.")
@click.option(
    "--format", "output", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.pass_obj
def command(
    options: Options,
    patterns: tuple[str, ...],
    day: str | None,
    start: str | None,
    last: int,
    run_id: str | None,
    output: str,
) -> int:
    """The newest attempts of the matched targets' cells (every target without a PATTERN):
    when, where, why (reason and the inputs that moved), phases, users, shards, outcome."""
    if day is not None and start is not None:
        raise UsageError("--date and --from exclude each other: give one")
    if last < 1:
        raise UsageError(f"--last {last}: give a positive number of attempts")
    with options.session() as session:
        labels = {target.name: target.label for target in session.workspace.targets.values()}
        names = None
        if patterns:
            matched = session.match(patterns)
            names = tuple(sorted(label.split(":", 1)[1] for label in matched))
        query = LogQuery(
            targets=names,
            date=parse_date(day, "--date").isoformat() if day else None,
            since=parse_date(start, "--from").isoformat() if start else None,
            run_id=run_id,
            last=last,
        )
        runs = read_log(session.backend, query)
    if output == "json":
        click.echo(json.dumps({"runs": [to_json(run, labels) for run in runs]}, indent=1))
    else:
        click.echo(render(runs, labels))
    return 0
