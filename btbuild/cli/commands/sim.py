"""``btbuild sim PATTERN...``: SimHashes of the matched targets on the fabricated contexts."""

from __future__ import annotations

import json
from typing import Any

import click

from btbuild.cli.options import Options
from btbuild.sim.degenerate import source_notes


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
    target's fabricated outputs are degenerate (they cannot tell code versions apart).
    Calculation code runs in a child process (btbuild/sim/isolated.py): a target whose
    simulation ends that process, hangs or fails is one ``error:`` line, and exit code 1."""
    from btbuild.sim.isolated import IsolatedJudge

    with options.session() as session:
        labels = session.match(patterns)
        by_label = session.workspace.by_label()
        child = IsolatedJudge(session)
        rows: list[dict[str, Any]] = []
        notes: list[str] = []
        version = ""
        try:
            for label in sorted(labels):
                answer = child.simulate(by_label[label], alone)
                if isinstance(answer, str):
                    rows.append({"label": label, "error": answer})
                    continue
                rows.append({"label": label, **answer["row"]})
                notes += answer["notes"]
                version = answer["fabricator"]
        finally:
            child.close()
        roots = {root for label in labels for root in by_label[label].all_roots}
        notes = source_notes(session.plugins.root_sources(), roots) + notes
    _print(rows, list(dict.fromkeys(notes)), version, output)
    return 1 if any("error" in row for row in rows) else 0


def _print(rows: list[dict[str, Any]], notes: list[str], version: str, output: str) -> None:
    if output == "json":
        click.echo(json.dumps({"fabricator": version, "targets": rows, "notes": notes}, indent=2))
        return
    for row in rows:
        if "error" not in row:
            click.echo(f"{row['sim_hash']}  {row['contexts']:>4} contexts  {row['label']}")
    for note in notes:
        click.echo(f"note: {note}", err=True)
    for row in rows:
        if "warning" in row:
            click.echo(f"warning: {row['label']}: {row['warning']}", err=True)
        if "error" in row:
            click.echo(f"error: {row['label']}: {row['error']}", err=True)
