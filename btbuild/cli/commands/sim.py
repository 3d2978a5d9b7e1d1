"""``btbuild sim PATTERN...``: SimHashes of the matched targets on the fabricated contexts."""

from __future__ import annotations

import json

import click

from btbuild.cli.options import Options
from btbuild.sim.degenerate import degenerate, source_notes
from btbuild.sim.runner import SimRunner
from btbuild.sim.world_store import save_all


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
def command(options: Options, patterns: tuple[str, ...], output: str, alone: bool) -> int:
    """Print each matched target's combined SimHash and its number of contexts; warn when a
    target's fabricated outputs are degenerate (they cannot tell code versions apart)."""
    session = options.session()
    labels = session.match(patterns)
    sources = session.plugins.root_sources()
    runner = SimRunner(
        session.workspace,
        sources,
        predicates=session.plugins.segment_predicates,
        alone=alone,
    )
    by_label = session.workspace.by_label()
    rows = []
    for label in sorted(labels):
        target = by_label[label]
        result = runner.simulate(target.name)
        row = {"label": label, "sim_hash": result.combined, "contexts": len(result.contexts)}
        warning = degenerate(result)
        if warning:
            row["warning"] = warning
        rows.append(row)
    save_all()  # fabricated values kept for the next sim, build or verify (sim/world_store.py)
    roots = {root for label in labels for root in by_label[label].all_roots}
    notes = source_notes(sources, roots) + runner.fabricator.notes
    if output == "json":
        click.echo(
            json.dumps(
                {"fabricator": runner.fabricator.version, "targets": rows, "notes": notes},
                indent=2,
            )
        )
    else:
        for row in rows:
            click.echo(f"{row['sim_hash']}  {row['contexts']:>4} contexts  {row['label']}")
        for note in notes:
            click.echo(f"note: {note}", err=True)
        for row in rows:
            if "warning" in row:
                click.echo(f"warning: {row['label']}: {row['warning']}", err=True)
    return 0
