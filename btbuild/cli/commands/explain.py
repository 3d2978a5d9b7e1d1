"""``btbuild explain LABEL --date D``: why a cell will run or be skipped, hash by hash."""

from __future__ import annotations

import json
from datetime import date
from typing import TYPE_CHECKING, Any

import click

from btbuild.analysis.explain import explain_cell as explain
from btbuild.analysis.views import RecordView
from btbuild.cli.commands.build import parse_date
from btbuild.cli.options import Options
from btbuild.errors import LabelError
from btbuild.execution.build import BuildRequest, Scheduler
from btbuild.session import Session
from btbuild.workspace.model import Target

if TYPE_CHECKING:  # the simulation is imported when a cell is explained
    from btbuild.sim.isolated import IsolatedJudge
    from btbuild.sim.judge import Judge


@click.command("explain")
@click.argument("label")
@click.option("--date", "day", required=True, metavar="D")
@click.option(
    "--format", "output", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.pass_obj
def command(options: Options, label: str, day: str, output: str) -> int:
    """Explain the decision for the cell (LABEL, D): every input compared with the cache."""
    when = parse_date(day, "--date")
    from btbuild.execution.guard import calc_output

    with (
        options.session() as session,
        calc_output(),
    ):  # calculation code run for SimHashes prints to stderr
        report = explain_cell(session, label, when)
    click.echo(json.dumps(report, indent=2) if output == "json" else render(report))
    return 0


def explain_cell(session: Session, label: str, day: date) -> dict[str, Any]:
    """The explanation of one cell as JSON, with the simulation's verdict on a code change."""
    from btbuild.sim.isolated import isolated_judge

    matched = session.match([label])
    if len(matched) != 1:
        raise LabelError(f"explain takes one target, {label} matches {len(matched)}")
    (label,) = matched
    with isolated_judge(session) as judge:  # calculation code runs in a child process
        scheduler = Scheduler(
            session,
            BuildRequest(patterns=(label,), end=day, start=day, dry_run=True),
            equivalent=judge,
        )
        target = scheduler.targets[label]
        explanation = explain(scheduler.plan().planner, target, day)
        verdict = _verdict(judge, target, explanation.record)
    return {**explanation.to_json(), "verdict": verdict}


def _verdict(
    judge: Judge | IsolatedJudge, target: Target, record: RecordView | None
) -> dict[str, Any] | None:
    """The verdict on the cell's code change, when the planner asked for one."""
    if record is None:
        return None
    for key in ((target.name, record.code_hash), (f"recheck:{target.name}", None)):
        for (name, code), verdict in judge.verdicts.items():
            if name == key[0] and (key[1] is None or code == key[1]):
                return dict(verdict.to_json())
    return None


def render(report: dict[str, Any]) -> str:
    lines = [f"{report['label']} {report['date']}: {report['status']} ({report['reason']})"]
    if report["detail"]:
        lines.append(f"  {report['detail']}")
    record = report["record"]
    if record is None:
        lines.append("  no cache record: this cell never ran")
    else:
        lines.append(
            f"  cache: {record['status']}, result {record['result_hash'] or 'none'}, attempts {record['attempts']}"
        )
        if record["last_error"]:
            lines.append(f"  last error: {record['last_error']}")
    for row in report["components"]:
        mark = "same   " if row["same"] else "CHANGED"
        if row["same"]:
            lines.append(f"  {mark} {row['component']:<28} {row['current']}")
        else:
            lines.append(
                f"  {mark} {row['component']:<28} {row['recorded'] or '(none)'} -> {row['current'] or '(none)'}"
            )
    verdict = report.get("verdict")
    if verdict:
        lines.append(f"  verdict: {verdict['reason']}")
        counter = verdict.get("counterexample")
        if counter:
            for key in ("date", "user", "inputs", "old", "stored", "new", "command"):
                if key in counter:
                    lines.append(f"    {key}: {_short(counter[key])}")
    return "\n".join(lines)


def _short(value: Any, limit: int = 1500) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[:limit] + " ... (--format json shows it all)"
