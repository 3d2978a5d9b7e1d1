"""``btbuild worker``: pull (date, pass) groups from Pub/Sub and run them on the shared cache.

Start as many as you like, on as many machines as you like, each in a checkout of the same
workspace revision as the dispatcher (``btbuild build ... --executor pubsub``). See
docs/deploy.md.
"""

from __future__ import annotations

import click

from btbuild.cli.options import Options, check_ack_deadline


@click.command("worker")
@click.option(
    "--max-messages",
    type=int,
    default=None,
    metavar="N",
    help="Exit after N messages (default: run until stopped).",
)
@click.option(
    "--idle-exit",
    type=float,
    default=None,
    metavar="SECONDS",
    help="Exit after this long without a message.",
)
@click.option(
    "--ack-deadline",
    type=int,
    default=60,
    show_default=True,
    metavar="SECONDS",
    help="Pub/Sub ack deadline, extended every third of it while a group runs.",
)
@click.option(
    "--grace",
    type=float,
    default=20.0,
    show_default=True,
    metavar="SECONDS",
    help="On SIGTERM/SIGINT, give the running task back within this long, then exit.",
)
@click.option("--quiet", is_flag=True, help="Do not log each task on stderr.")
@click.pass_obj
def command(
    options: Options,
    max_messages: int | None,
    idle_exit: float | None,
    ack_deadline: int,
    grace: float,
    quiet: bool,
) -> int:
    """Run tasks published by `btbuild build --executor pubsub` until stopped."""
    from btbuild.execution.pubsub import serve, worker_environment

    check_ack_deadline(ack_deadline)
    with options.session() as session:
        env, backend = worker_environment(session)
        stats = serve(
            env,
            backend,
            project=session.workspace.storage.project,
            max_messages=max_messages,
            idle_exit=idle_exit,
            ack_deadline=ack_deadline,
            grace=grace,
            log=(lambda line: None)
            if quiet
            else (lambda line: click.echo(f"btbuild worker: {line}", err=True)),
        )
    stopped = f" (stopped by {stats.stopped_by})" if stats.stopped_by else ""
    click.echo(
        f"btbuild worker: {stats.messages} messages, {stats.groups_finished} groups finished{stopped}",
        err=True,
    )
    return 0
