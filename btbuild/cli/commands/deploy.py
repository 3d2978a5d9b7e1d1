"""``btbuild deploy``: create the workspace's Pub/Sub topics and subscriptions and its
Firestore indexes, once, with admin rights (dispatcher and workers only check they exist).
See docs/deploy.md."""

from __future__ import annotations

import click

from btbuild.cli.options import Options, check_ack_deadline


@click.command("deploy")
@click.option(
    "--print",
    "print_only",
    is_flag=True,
    help="Print the equivalent gcloud commands instead of creating anything.",
)
@click.option(
    "--ack-deadline",
    type=int,
    default=60,
    show_default=True,
    metavar="SECONDS",
    help="The workers' subscription's ack deadline (workers extend it while they run a task).",
)
@click.pass_obj
def command(options: Options, print_only: bool, ack_deadline: int) -> int:
    """Create every topic, subscription and Firestore index this workspace needs."""
    from btbuild.execution.pubsub.deploy import deploy, plan_for

    check_ack_deadline(ack_deadline)
    with options.session() as session:
        plan, backend = plan_for(session, ack_deadline)
        if print_only:
            for line in plan.gcloud(backend):
                click.echo(line)
            return 0
        deploy(plan, backend, log=lambda line: click.echo(f"btbuild deploy: {line}"))
    return 0
