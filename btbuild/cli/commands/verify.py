"""``btbuild verify --base REV``: CI check that every code change since REV is behaviour-preserving."""

from __future__ import annotations

import json
from typing import Any

import click

from btbuild.sim.verify import BEHAVIOUR_CHANGED, VerifyOptions, VerifyReport, verify

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
    "--format", "output", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.pass_obj
def command(
    options: object, base: str, expect: tuple[str, ...], search_seconds: float, output: str
) -> int:
    """Compare every calculation whose code changed since REV on fabricated contexts."""
    session = options.session()  # type: ignore[attr-defined]
    try:
        report = verify(
            session, VerifyOptions(base=base, expect_change=expect, search_seconds=search_seconds)
        )
    finally:
        session.close()
    if output == "json":
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        print_text(report)
    return 0 if report.ok else 1


def print_text(report: VerifyReport) -> None:
    for change in report.changed:
        note = " (expected)" if change.expected else ""
        if change.weak:
            note += " (weak: the fabricated contexts gave fewer than 2 distinct outputs)"
        extra = f" ({change.contexts} contexts)" if change.contexts else ""
        click.echo(f"{change.verdict:<18} {change.label}{extra}{note}")
        if change.reason:
            click.echo(f"    {change.reason}")
        if change.verdict == BEHAVIOUR_CHANGED and change.counterexample:
            for key in ("inputs", "old", "new", "error"):
                if key in change.counterexample:
                    click.echo(f"    {key}: {_short(change.counterexample[key])}")
    unexpected = sum(1 for c in report.changed if c.verdict == BEHAVIOUR_CHANGED and not c.expected)
    if not report.changed:
        click.echo(f"verify: no calculation changed since {report.base}")
    elif report.ok:
        click.echo("verify: ok")
    else:
        click.echo(
            f"verify: {unexpected} unexpected behaviour change(s); "
            "fix them or pass --expect-change LABEL for intended ones",
            err=True,
        )


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + " ..."
