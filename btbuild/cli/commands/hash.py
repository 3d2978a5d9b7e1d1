"""``btbuild hash PATTERN...``: every hash component of the matched targets."""

from __future__ import annotations

import json

import click

from btbuild.cli.options import Options
from btbuild.hashing.report import hash_report, render_text


@click.command("hash")
@click.argument("patterns", nargs=-1, required=True)
@click.option(
    "--format", "output", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.pass_obj
def command(options: Options, patterns: tuple[str, ...], output: str) -> int:
    """Print code, layer, infrastructure, declaration, dependency and composite hashes."""
    session = options.session()
    labels = session.match(patterns)
    report = hash_report(session.hashes, labels)
    click.echo(
        json.dumps(report, indent=2) if output == "json" else render_text(report),
        nl=output == "json",
    )
    return 0
