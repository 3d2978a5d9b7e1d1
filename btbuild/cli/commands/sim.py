"""``btbuild sim PATTERN...``: SimHashes of the matched targets on the fabricated contexts."""

from __future__ import annotations

import json

import click

from btbuild.sim.fabricator import fabricator_version
from btbuild.sim.runner import SimRunner


@click.command("sim")
@click.argument("patterns", nargs=-1, required=True)
@click.option(
    "--format", "output", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.option(
    "--alone",
    is_flag=True,
    help="Simulate each target alone: deps with an output schema are drawn from it, not run.",
)
@click.pass_obj
def command(options: object, patterns: tuple[str, ...], output: str, alone: bool) -> int:
    """Print each matched target's combined SimHash and its number of contexts."""
    session = options.session()  # type: ignore[attr-defined]
    labels = session.match(patterns)
    runner = SimRunner(
        session.workspace,
        session.plugins.root_sources(),
        predicates=session.plugins.segment_predicates,
        alone=alone,
    )
    by_label = session.workspace.by_label()
    rows = []
    for label in sorted(labels):
        result = runner.simulate(by_label[label].name)
        rows.append({"label": label, "sim_hash": result.combined, "contexts": len(result.contexts)})
    if output == "json":
        click.echo(json.dumps({"fabricator": fabricator_version(), "targets": rows}, indent=2))
    else:
        for row in rows:
            click.echo(f"{row['sim_hash']}  {row['contexts']:>4} contexts  {row['label']}")
    return 0
