"""Every command has --help, and every option it takes is documented somewhere in docs/."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from btbuild.cli.main import COMMANDS, LazyGroup, cli, main

DOCS = "\n".join(
    path.read_text() for path in (Path(__file__).resolve().parents[2] / "docs").glob("*.md")
)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_runs_and_options_are_documented(name, capsys):
    assert main([name, "--help"]) == 0
    assert capsys.readouterr().out.startswith("Usage: btbuild")
    command = LazyGroup.get_command(cli, click.Context(cli), name)
    assert command is not None
    for param in command.params:
        if isinstance(param, click.Option) and param.name != "help":
            long = max(param.opts, key=len)
            assert long in DOCS, f"btbuild {name} {long} is not documented in docs/"


def test_top_level_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out
