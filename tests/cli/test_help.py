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


@pytest.mark.parametrize("name", ["worker", "deploy"])
@pytest.mark.parametrize("seconds", ["9", "601"])
def test_ack_deadline_outside_pubsubs_range_is_one_line_and_exit_2(name, seconds, capsys, tmp_path):
    assert main(["--workspace", str(tmp_path), name, "--ack-deadline", seconds]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "btbuild: error: --ack-deadline must be between 10 and 600 seconds (Pub/Sub's range), "
        f"got {seconds}"
    )
