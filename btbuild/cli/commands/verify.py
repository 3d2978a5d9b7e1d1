"""``btbuild verify --base REV``: CI check that every code change since REV is behaviour-preserving."""

from __future__ import annotations

import json
from typing import Any

import click

from btbuild.cli.options import Options
from btbuild.sim.verify import (
    BEHAVIOUR_CHANGED,
    UNPROVEN,
    WEAK,
    VerifyOptions,
    VerifyReport,
    verify_isolated,
)

SHOWN_CHARS = 1500  # of each counterexample part in text output


@click.command("verify")
@click.option(
    "--base", required=True, metavar="REV", help="Git revision to compare with (e.g. origin/main)."
)
@click.option(
    "--expect-change",
    "expect",
    multiple=True,
    metavar="LABEL",
    help="A calculation whose behaviour change is intended (repeatable).",
)
@click.option(
    "--search-seconds",
    default=2.0,
    show_default=True,
    type=float,
    help="Time per equal-looking target for the harder search (0: none).",
)
@click.option(
    "--allow-unproven",
    is_flag=True,
    help="Exit 0 on unproven and weak verdicts (they still say why).",
)
@click.option(
    "--format", "output", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.pass_obj
def command(
    options: Options,
    base: str,
    expect: tuple[str, ...],
    search_seconds: float,
    allow_unproven: bool,
    output: str,
) -> int:
    """Compare every calculation whose code changed since REV: on stored results replayed
    from the cache and on fabricated contexts."""
    with options.session() as session:
        report = verify_isolated(  # calculation code runs in a child process
            session,
            VerifyOptions(
                base=base,
                expect_change=expect,
                search_seconds=search_seconds,
                allow_unproven=allow_unproven,
            ),
        )
    if output == "json":
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        print_text(report)
    return 0 if report.ok else 1


def print_text(report: VerifyReport) -> None:
    for change in report.changed:
        note = " (expected)" if change.expected else ""
        extra = f" ({change.contexts} contexts)" if change.contexts else ""
        click.echo(f"{change.verdict:<18} {change.label}{extra}{note}")
        if change.reason:
            click.echo(f"    {change.reason}")
        if change.verdict == BEHAVIOUR_CHANGED and change.counterexample:
            for key in ("date", "user", "inputs", "old", "stored", "new", "error", "command"):
                if key in change.counterexample:
                    click.echo(f"    {key}: {_short(change.counterexample[key])}")
    if report.changed and report.cache_note:
        click.echo(f"verify: {report.cache_note}")
    failures = report.failures()
    changed = sum(1 for c in failures if c.verdict == BEHAVIOUR_CHANGED)
    unproven = sum(1 for c in failures if c.verdict in (UNPROVEN, WEAK))
    if not report.changed:
        click.echo(f"verify: no calculation changed since {report.base}")
    elif report.ok:
        click.echo("verify: ok")
    else:
        parts = []
        if changed:
            parts.append(
                f"{changed} unexpected behaviour change(s); fix them or pass "
                "--expect-change LABEL for intended ones"
            )
        if unproven:
            parts.append(
                f"{unproven} change(s) could not be proven (unproven or weak, see above); "
                "pass --allow-unproven to accept them"
            )
        click.echo("verify: " + "; ".join(parts), err=True)


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + " ..."
