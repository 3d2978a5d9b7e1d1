"""The ``btbuild`` command line: a thin click layer over the library.

This module is the single boundary that turns :class:`btbuild.errors.BtbuildError` into one
line on stderr and an exit code; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import traceback

import click

from btbuild.cli.options import Options
from btbuild.errors import BtbuildError

# command name -> module under btbuild.cli.commands; each module defines `command`
COMMANDS = {
    "build": "build",
    "query": "query",
    "explain": "explain",
    "status": "status",
    "fsck": "fsck",
    "hash": "hash",
    "sim": "sim",
    "verify": "verify",
    "worker": "worker",
    "gc": "gc",
    "deploy": "deploy",
    "show": "show",
    "log": "log",
    "diff-cache": "diff_cache",
    "report": "report",
}


class LazyGroup(click.Group):
    """Imports a command's module only when that command runs (fast ``btbuild query``)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in COMMANDS if _available(name)]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS or not _available(name):
            return None
        module = importlib.import_module(f"btbuild.cli.commands.{COMMANDS[name]}")
        command: click.Command = module.command
        return command


def _available(name: str) -> bool:
    return importlib.util.find_spec(f"btbuild.cli.commands.{COMMANDS[name]}") is not None


_state = {"debug": False}


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--workspace",
    metavar="DIR",
    help="Workspace folder (default: walk up from the current folder).",
)
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.version_option(package_name="btbuild")
@click.pass_context
def cli(ctx: click.Context, workspace: str | None, debug: bool) -> None:
    """btbuild: a build system for data."""
    _state["debug"] = debug
    ctx.obj = Options(workspace, debug)


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point; returns (and exits with) the exit status."""
    from btbuild.execution.guard import interrupt_flag

    _state["debug"] = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        with interrupt_flag():  # a real Ctrl-C vs a KeyboardInterrupt raised by calc code
            result = cli.main(args=argv, prog_name="btbuild", standalone_mode=False)
    except click.exceptions.Abort:  # click's form of KeyboardInterrupt
        click.echo("btbuild: interrupted", err=True)
        code = 130
    except click.ClickException as exc:
        exc.show()
        code = exc.exit_code
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except BtbuildError as exc:
        if _state["debug"]:
            traceback.print_exc()
        click.echo(f"btbuild: error: {exc}", err=True)
        code = exc.exit_code
    except KeyboardInterrupt:
        click.echo("btbuild: interrupted", err=True)
        code = 130
    except Exception as exc:  # a btbuild bug: still one line unless --debug
        if _state["debug"]:
            traceback.print_exc()
        click.echo(
            f"btbuild: internal error (a bug in btbuild, please report it): {type(exc).__name__}: {exc} "
            "(run with --debug for the traceback)",
            err=True,
        )
        code = 1
    else:
        code = result if isinstance(result, int) else 0
    if argv is None:
        sys.exit(code)
    return code
