"""``btbuild build PATTERN... --date D``: catch up every matched target and its deps."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING

import click

from btbuild.cli.options import Options
from btbuild.errors import CacheFileDamaged, UsageError
from btbuild.execution.build import BuildReport, BuildRequest, CellReport, Scheduler
from btbuild.execution.executors import DEFAULT_EXECUTOR, executor_named
from btbuild.vocabulary import Reason, Status

if TYPE_CHECKING:
    from btbuild.session import Session
    from btbuild.storage.sqlite_salvage import Salvage


def parse_date(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{option} {value!r} is not a date like 2024-03-01") from None


@click.command("build")
@click.argument("patterns", nargs=-1, required=True)
@click.option("--date", "end", required=True, metavar="D", help="Last date to build (YYYY-MM-DD).")
@click.option("--from", "start", metavar="D0", help="First date (default: [workspace] start_date).")
@click.option("--dry-run", is_flag=True, help="Decide every cell, run nothing.")
@click.option("--jobs", "-j", default=1, show_default=True, type=int, help="Worker processes.")
@click.option("--force", is_flag=True, help="Re-run every cell of the matched targets.")
@click.option("--force-deps", is_flag=True, help="With their deps: re-run every cell of the build.")
@click.option("--retry-dead", is_flag=True, help="Re-run dead letters whose inputs did not change.")
@click.option(
    "--recheck-cosmetic",
    is_flag=True,
    help="Examine again every cell that adopted new code through a cosmetic verdict; re-run those it cannot prove.",
)
@click.option(
    "--verbose",
    "-v",
    is_flag=True,
    help="Also print what calculations logged (ctx.log) while their changes were being proven.",
)
@click.option(
    "--no-wait",
    is_flag=True,
    help="Do not wait for cells another builder holds: report them blocked (exit 1).",
)
@click.option(
    "--executor",
    default=DEFAULT_EXECUTOR,
    show_default=True,
    metavar="NAME",
    help='local: this machine (--jobs); pubsub: `btbuild worker` processes (needs [storage] backend = "firestore"); or one a plugin registers (btbuild_executors).',
)
@click.option(
    "--format", "output", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.option("--product-line", "product_lines", multiple=True, metavar="NAME")
@click.pass_obj
def command(
    options: Options,
    patterns: tuple[str, ...],
    end: str,
    start: str | None,
    dry_run: bool,
    jobs: int,
    force: bool,
    force_deps: bool,
    retry_dead: bool,
    recheck_cosmetic: bool,
    verbose: bool,
    no_wait: bool,
    executor: str,
    output: str,
    product_lines: tuple[str, ...],
) -> int:
    """Catch up every target matched by PATTERNS (and its deps) for every date through --date."""
    request = BuildRequest(
        patterns=patterns,
        end=parse_date(end, "--date"),
        start=parse_date(start, "--from") if start else None,
        dry_run=dry_run,
        jobs=jobs,
        force=force,
        force_deps=force_deps,
        retry_dead=retry_dead,
        wait=not no_wait,
    )
    from btbuild.execution.guard import calc_output

    logs: list[str] = []

    def attempt(session: Session) -> BuildReport:
        return run_build(
            session, request, output, executor, recheck_cosmetic=recheck_cosmetic, logs=logs
        )

    with calc_output():  # calculation code (cells, SimHash worlds) prints to stderr
        report = build_repairing(options, product_lines, attempt, repair=not dry_run)
    if output == "json":
        click.echo(report.json_text())
    else:
        print_text(report)
    if verbose and logs:
        click.echo(f"ctx.log of the simulation and replay runs ({len(logs)} lines):", err=True)
        for line in logs:
            click.echo(f"  {line}", err=True)
    return 0 if report.ok else 1


def build_repairing(
    options: Options,
    product_lines: tuple[str, ...],
    attempt: Callable[[Session], BuildReport],
    *,
    repair: bool = True,
) -> BuildReport:
    """Run ``attempt`` in a session. When the cache *file* turns out damaged (on opening, as
    reported by an earlier command, or met while the build ran, even by a worker process
    whose cell failed of it) or was repaired by another process meanwhile, repair it (move
    it aside, salvage what checks out: btbuild/storage/sqlite_salvage.py) and run the whole
    build once more in a new session: one build repairs. Damage met again is an error."""
    salvages: list[Salvage] = []
    for last in (False, True) if repair else (True,):
        try:
            with options.session(product_lines=product_lines) as session:
                found = session.backend.damage_found()  # left by an earlier command
                if found is None:
                    report = attempt(session)
                    found = session.backend.damage_found()
                if found is not None:
                    raise found
            break
        except CacheFileDamaged as exc:
            if last:
                raise
            click.echo(
                f"btbuild: {exc.path}: {exc.problem}: repairing the cache file, then building "
                "again",
                err=True,
            )
            salvages.append(repair_file(exc))
    report.repairs[:0] = [salvage.describe() for salvage in salvages]
    report.salvage = [salvage.to_json() for salvage in salvages]
    return report


def repair_file(exc: CacheFileDamaged) -> Salvage:
    from btbuild.storage.sqlite_salvage import repair

    return repair(exc.path, exc.file_id)


def run_build(
    session: Session,
    request: BuildRequest,
    output: str,
    executor: str = DEFAULT_EXECUTOR,
    *,
    recheck_cosmetic: bool = False,
    logs: list[str] | None = None,
) -> BuildReport:
    from btbuild.cli.deferred_judge import DeferredJudge
    from btbuild.cli.progress import Progress

    chosen = executor_named(session.plugins, executor)
    chosen.check(session.workspace, session.backend, request)  # fail before planning
    progress = Progress(enabled=output == "text")
    # the sim judge runs calculation code in a child process (btbuild/sim/isolated.py),
    # imported and started when the build first needs it (a no-op never does)
    with DeferredJudge(
        session, register=not request.dry_run, recheck_all=recheck_cosmetic
    ) as judge:
        scheduler = Scheduler(
            session,
            request,
            equivalent=judge,
            on_progress=progress.update,
            after_run=judge.after_run,
            on_wait=progress.notice,
        )
        try:
            with progress.running(len(scheduler.order) * len(scheduler.dates)):
                return scheduler.run(chosen)
        finally:
            if logs is not None:
                logs.extend(judge.log_lines())


def print_text(report: BuildReport) -> None:
    for line in report.repairs:  # what the build changed in the cache before running
        click.echo(f"repaired: {line}")
    shown = [cell for cell in report.cells if _interesting(cell)]
    for cell in shown:
        line = f"{cell.status:<11} {cell.label} {cell.date.isoformat()} ({cell.reason})"
        if cell.detail:
            line += f": {cell.detail}"
        click.echo(line)
    summary = report.summary()
    click.echo("summary: " + ", ".join(f"{count} {name}" for name, count in summary.items()))
    if summary.get(Status.FAILED) or summary.get(Status.DEAD_LETTER):
        click.echo("build failed: see the failed cells above", err=True)
    elif not report.ok:
        click.echo(
            f"build incomplete: {summary[Status.BLOCKED]} cells are blocked (see above)", err=True
        )


def _interesting(cell: CellReport) -> bool:
    """Text output lists what ran or needs attention; up-to-date and impossible cells are
    only counted (``--format json`` and ``btbuild status`` show every cell)."""
    if cell.status == Status.SKIPPED:
        return cell.reason in (Reason.COSMETIC, Reason.EARLY_CUTOFF)
    return cell.status != Status.IMPOSSIBLE
