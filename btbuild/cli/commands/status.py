"""``btbuild status PATTERN... --date D [--from D0]``: the grid of cell states.

Each row is a target, each column a date; the mark says what a build would do with the cell
(a dry run, nothing is written). ``--format json`` prints the same object as
``build --dry-run --format json``.
"""

from __future__ import annotations

import click

from btbuild.cli.commands.build import parse_date
from btbuild.cli.options import Options
from btbuild.execution.build import BuildReport, BuildRequest, Scheduler
from btbuild.readers.marks import LEGEND, MARKS, mark
from btbuild.vocabulary import Status

__all__ = ["LEGEND", "MARKS", "command", "mark", "render_grid"]


@click.command("status")
@click.argument("patterns", nargs=-1, required=True)
@click.option("--date", "end", required=True, metavar="D")
@click.option("--from", "start", metavar="D0")
@click.option(
    "--format", "output", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.pass_obj
def command(
    options: Options, patterns: tuple[str, ...], end: str, start: str | None, output: str
) -> int:
    """Show what a build would do with each cell of the matched targets (and their deps)."""
    from btbuild.sim.isolated import isolated_judge

    request = BuildRequest(
        patterns=patterns,
        end=parse_date(end, "--date"),
        start=parse_date(start, "--from") if start else None,
        dry_run=True,
    )
    from btbuild.execution.guard import calc_output

    with (
        options.session() as session,
        calc_output(),  # calculation code run for SimHashes prints to stderr
        isolated_judge(session) as judge,  # ... in a child process: it may crash or hang
    ):
        report = Scheduler(session, request, equivalent=judge).run()
    click.echo(report.json_text() if output == "json" else render_grid(report))
    return 0


def _reasons(report: BuildReport) -> list[str]:
    """Why cells whose code changed re-run (an unproven, weak or disproven cosmetic change)."""
    found: dict[tuple[str, str, str], list[str]] = {}
    for cell in report.cells:
        if cell.status == Status.RUNNABLE and cell.detail:
            found.setdefault((cell.label, cell.reason, cell.detail), []).append(
                cell.date.isoformat()
            )
    lines = [""] if found else []
    for (label, reason, detail), dates in found.items():
        when = dates[0] if len(dates) == 1 else f"{dates[0]} .. {dates[-1]} ({len(dates)} cells)"
        lines.append(f"{label} {when}: {reason}: {detail}")
    return lines


def render_grid(report: BuildReport) -> str:
    dates = sorted({cell.date for cell in report.cells})
    labels: dict[str, dict[object, str]] = {}
    for cell in report.cells:
        labels.setdefault(cell.label, {})[cell.date] = mark(cell)
    width = max((len(label) for label in labels), default=0)
    lines = [
        f"{'':<{width}}  {dates[0].isoformat()} .. {dates[-1].isoformat()}"
        if dates
        else "no cells",
        f"{'':<{width}}  " + "".join(str(d.day // 10) for d in dates),
        f"{'':<{width}}  " + "".join(str(d.day % 10) for d in dates),
    ]
    for label, row in labels.items():
        lines.append(f"{label:<{width}}  " + "".join(row.get(d, " ") for d in dates))
    lines += _reasons(report)
    summary = report.summary()
    lines.append("")
    lines.append("summary: " + ", ".join(f"{count} {name}" for name, count in summary.items()))
    lines.append(LEGEND)
    return "\n".join(lines)
