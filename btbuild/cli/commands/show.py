"""``btbuild show LABEL --date D [--user U] [--path P]``: a stored result and where it came from."""

from __future__ import annotations

import click

from btbuild.cli.commands.build import parse_date
from btbuild.cli.options import Options
from btbuild.readers.jsonpath import parse_path
from btbuild.readers.show import one_label, show


@click.command("show")
@click.argument("label")
@click.option("--date", "day", required=True, metavar="D", help="Date of the cell (YYYY-MM-DD).")
@click.option("--user", metavar="U", help="Only this user's value (per_user targets).")
@click.option(
    "--path",
    "json_path",
    metavar="JSON_PATH",
    help="Only this part of each value, e.g. '$.risk.bands[0]' or 'risk.score'.",
)
@click.option(
    "--format", "output", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.pass_obj
def command(
    options: Options,
    label: str,
    day: str,
    user: str | None,
    json_path: str | None,
    output: str,
) -> int:
    """Print the stored result of the cell (LABEL, D): its hash, the run that computed it and
    the value, streamed user by user (exit 1 with the reason when there is none)."""
    when = parse_date(day, "--date")
    steps = parse_path(json_path) if json_path is not None else ()
    with options.session() as session:
        chosen = one_label(session.match([label]), label)
        target = session.workspace.targets[chosen.split(":", 1)[1]]
        show(
            session.backend,
            chosen,
            target.name,
            when,
            lambda text: click.echo(text, nl=False),
            user=user,
            path=steps,
            output=output,
        )
    return 0
