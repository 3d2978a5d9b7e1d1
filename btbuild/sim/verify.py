"""``btbuild verify --base REV``: is every code change since REV behaviour-preserving?

The old code comes from a temporary ``git worktree add --detach`` of REV (removed afterwards,
also on error). For each calculation whose code or layers hash differs, the old and the new
code run on identical fabricated contexts: the same worlds, and the same dep outputs (those
the *new* upstream code computes, so a target's verdict is about its own change only). The
first context whose canonical outputs differ is the counterexample.

Targets that looked equal are then searched harder: more worlds, drawn from the same
Hypothesis strategies with world indices past the standard ones, in batches, until a time
budget per target is spent. The worlds are deterministic; how many are tried depends on the
machine's speed, so a slow machine may find less, never something different.

Limitation: old and new code are loaded side by side in one process (each module object is
kept by its loader). A calculation importing a workspace module lazily *inside* ``process``
sees whichever version was imported last.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import BrokenExecutor, ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING, Any

from btbuild.errors import BtbuildError, UsageError
from btbuild.hashing import compute_hashes
from btbuild.hashing.cache import HashCache
from btbuild.sim.calls import DEFAULT_TIME_LIMIT, is_failure
from btbuild.sim.evidence import ChangeTracing
from btbuild.sim.fabricator import WORLDS, Fabricator
from btbuild.sim.optimizer import code_key
from btbuild.sim.runner import MIN_DISTINCT, ContextRun, SimRunner
from btbuild.sim.verify_replay import cache_note, replay_changes, with_replay
from btbuild.sim.world_store import STORE_FOLDER, save_all
from btbuild.vocabulary import VerdictKind
from btbuild.workspace.config import load_workspace
from btbuild.workspace.model import Target, Workspace

if TYPE_CHECKING:
    from btbuild.session import Session

COSMETIC = VerdictKind.COSMETIC
BEHAVIOUR_CHANGED = VerdictKind.BEHAVIOUR_CHANGED
UNPROVEN = VerdictKind.UNPROVEN
WEAK = VerdictKind.WEAK
NEW = VerdictKind.NEW
REMOVED = VerdictKind.REMOVED
SEARCH_START = 10_000  # first world index of the harder search
SEARCH_BATCH = 16


@dataclass(frozen=True)
class ChangedTarget:
    label: str
    verdict: str
    counterexample: dict[str, Any] | None = None
    expected: bool = False
    contexts: int = 0  # contexts compared (fabricated + searched)
    seconds: float = 0.0
    weak: bool = False  # the contexts gave fewer than two distinct real outputs
    reason: str = ""  # why the verdict is not cosmetic (or what evidence it rests on)
    replay: dict[str, Any] | None = None  # ReplayResult.to_json(); None: nothing stored

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "verdict": self.verdict,
            "reason": self.reason,
            "counterexample": self.counterexample,
            "expected": self.expected,
            "contexts": self.contexts,
            "weak": self.weak,
            "replay": self.replay,
        }


@dataclass
class VerifyReport:
    base: str
    changed: list[ChangedTarget] = field(default_factory=list)
    allow_unproven: bool = False
    cache_note: str = ""  # what the replay could rest on

    def failures(self) -> list[ChangedTarget]:
        """Unexpected behaviour changes; unproven and weak verdicts too, unless allowed."""
        bad = [BEHAVIOUR_CHANGED] + ([] if self.allow_unproven else [UNPROVEN, WEAK])
        return [c for c in self.changed if c.verdict in bad and not c.expected]

    @property
    def ok(self) -> bool:
        return not self.failures()

    def to_json(self) -> dict[str, Any]:
        return {
            "changed": [c.to_json() for c in self.changed],
            "ok": self.ok,
            "cache": self.cache_note,
        }


@dataclass(frozen=True)
class VerifyOptions:
    base: str
    expect_change: tuple[str, ...] = ()
    search_seconds: float = 2.0
    time_limit: float | None = DEFAULT_TIME_LIMIT
    worlds: int = WORLDS
    allow_unproven: bool = False


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-C", str(cwd), *args], capture_output=True, text=True, check=False
    )


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def git_toplevel(root: Path) -> Path:
    if shutil.which("git") is None:
        raise UsageError("verify needs git, which is not on PATH")
    done = _git(root, "rev-parse", "--show-toplevel")
    if done.returncode != 0:
        raise UsageError(
            f"{root} is not inside a git repository ({_first_line(done.stderr)}); verify compares with a git revision"
        )
    return Path(done.stdout.strip())


def resolve_revision(top: Path, base: str) -> str:
    done = _git(top, "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}")
    if done.returncode != 0 or not done.stdout.strip():
        raise UsageError(f"--base {base!r} is not a commit of the git repository at {top}")
    return done.stdout.strip()


class VerifyDied(BtbuildError):
    """The process comparing the code ended (calculation code called ``os._exit``...)."""

    exit_code = 1


def verify_isolated(session: Session, options: VerifyOptions) -> VerifyReport:
    """:func:`verify` in a spawned child process, since it runs calculation code, which may
    call ``os._exit`` (even with exit code 0), crash or exhaust memory: then verify fails
    (exit 1, one line), it never answers with the calculation's exit code. The base's git
    worktree is removed here either way."""
    from btbuild.execution.liveness import start_worker

    root = Path(session.root).resolve()
    top = git_toplevel(root).resolve()
    resolve_revision(top, options.base)  # a bad --base is a usage error before anything runs
    temp = Path(tempfile.mkdtemp(prefix="btbuild-verify-"))
    pool = ProcessPoolExecutor(
        max_workers=1,
        mp_context=get_context("spawn"),
        initializer=start_worker,  # ends with this process
        initargs=(os.getpid(), f"{__name__}:_init_child"),
    )
    try:
        future = pool.submit(_verify_child, str(root), session.product_lines, options, str(temp))
        return future.result()
    except BrokenExecutor:
        raise VerifyDied(
            "verify: the process comparing the code ended while running calculation code "
            "(os._exit, a crash or out of memory); nothing is proven"
        ) from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        _git(top, "worktree", "remove", "--force", str(temp / "base"))
        shutil.rmtree(temp, ignore_errors=True)
        _git(top, "worktree", "prune")


def _init_child() -> None:
    from btbuild.execution.guard import install_interrupt_flag, stdout_to_stderr_fd

    install_interrupt_flag()
    stdout_to_stderr_fd()


def _verify_child(
    root: str, product_lines: tuple[str, ...], options: VerifyOptions, temp: str
) -> VerifyReport:
    from btbuild.session import Session

    session = Session(Path(root), product_lines=product_lines)
    try:
        return verify(session, options, temp=Path(temp))
    finally:
        session.close()


def verify(session: Session, options: VerifyOptions, *, temp: Path | None = None) -> VerifyReport:
    """Compare every changed calculation of ``session``'s workspace with revision ``options.base``
    (in this process: :func:`verify_isolated` is what the command runs)."""
    root = Path(session.root).resolve()
    top = git_toplevel(root).resolve()
    commit = resolve_revision(top, options.base)
    temp = temp or Path(tempfile.mkdtemp(prefix="btbuild-verify-"))
    tree = temp / "base"
    try:
        added = _git(top, "worktree", "add", "--detach", str(tree), commit)
        if added.returncode != 0:
            raise UsageError(
                f"git worktree add for --base {options.base!r} failed: {_first_line(added.stderr)}"
            )
        old_root = tree / root.relative_to(top)
        old = load_workspace(old_root) if (old_root / "BUILD.toml").is_file() else None
        return compare_workspaces(session, old, options)
    finally:
        _git(top, "worktree", "remove", "--force", str(tree))
        shutil.rmtree(temp, ignore_errors=True)
        _git(top, "worktree", "prune")


def _expected_labels(expect: Iterable[str], new: Workspace, old: Workspace | None) -> set[str]:
    known = set(new.by_label()) | (set(old.by_label()) if old else set())
    names = {t.name: t.label for t in new.targets.values()} | (
        {t.name: t.label for t in old.targets.values()} if old else {}
    )
    labels = set()
    for given in expect:
        label = names.get(given.split(":")[-1], given) if not given.startswith("//") else given
        if label not in known:
            raise UsageError(
                f"--expect-change {given!r} names no calculation of the workspace (now or at --base)"
            )
        labels.add(label)
    return labels


def _base_hashes(session: Session, old: Workspace) -> dict[str, Any]:
    """The base's hashes; file facts are keyed by the file's bytes, so the base's unchanged
    files are found in the working tree's cache."""
    return compute_hashes(
        old,
        extra_infra=session.plugins.infra_inputs(),
        cache=HashCache.for_workspace(session.workspace.root),
        predicate_code=session.plugins.predicate_code(),
    )


def compare_workspaces(
    session: Session, old: Workspace | None, options: VerifyOptions
) -> VerifyReport:
    """Verdicts for ``session``'s workspace against ``old`` (None: nothing existed before)."""
    new = session.workspace
    sources = session.plugins.root_sources()
    expected = _expected_labels(options.expect_change, new, old)
    report = VerifyReport(options.base, allow_unproven=options.allow_unproven)
    new_hashes = session.hashes
    old_hashes = _base_hashes(session, old) if old else {}
    old_targets = old.targets if old else {}
    changed: list[tuple[Target, Target]] = []
    for name, target in new.targets.items():
        before = old_targets.get(name)
        if before is None:
            report.changed.append(
                ChangedTarget(target.label, NEW, expected=target.label in expected)
            )
        elif code_key(old_hashes[name]) != code_key(new_hashes[name]):
            changed.append((before, target))
    for name, before in old_targets.items():
        if name not in new.targets:
            report.changed.append(
                ChangedTarget(before.label, REMOVED, expected=before.label in expected)
            )
    if changed:
        assert old is not None
        fabricator = Fabricator(sources, start=new.start_date, store=new.root / STORE_FOLDER)
        tracing = ChangeTracing(changed, old, new)
        predicates = session.plugins.segment_predicates  # a segment's users only, as built
        new_runner = SimRunner(
            new,
            sources,
            fabricator=fabricator,
            source_hook=tracing.probes["new"],
            time_limit=options.time_limit,
            trace=tracing.hook("new"),
            predicates=predicates,
        )
        old_runner = SimRunner(
            old,
            sources,
            fabricator=fabricator,
            source_hook=tracing.probes["old"],
            time_limit=options.time_limit,
            deps_from=new_runner,
            trace=tracing.hook("old"),
            predicates=predicates,
        )
        replays = replay_changes(session, changed, old_hashes, new_runner)
        report.cache_note = cache_note(replays)
        judged = _judge(new_runner, old_runner, changed, expected, options, tracing)
        report.changed.extend(with_replay(judged, replays))
        save_all()  # the next verify (or build) of this workspace starts with warm worlds
    report.changed.sort(key=lambda c: c.label)
    return report


def _judge(
    new_runner: SimRunner,
    old_runner: SimRunner,
    pairs: list[tuple[Target, Target]],
    expected: set[str],
    options: VerifyOptions,
    tracing: ChangeTracing,
) -> list[ChangedTarget]:
    worlds = {
        target.name: new_runner.fabricator.worlds(options.worlds)
        + new_runner.fabricator.literal_worlds(
            new_runner.literals(target).union(new_runner.literals(before, tracing.old))
        )
        for before, target in pairs
    }
    started = {t.name: time.perf_counter() for _, t in pairs}
    new_runs: dict[str, list[ContextRun] | str] = {}
    for _, target in pairs:  # all new code first: loading the old code replaces sys.modules entries
        new_runs[target.name] = _runs(new_runner, target, worlds[target.name])
    results = []
    for before, target in pairs:
        is_expected = target.label in expected
        old_runs = _runs(old_runner, before, worlds[target.name])
        news = new_runs[target.name]
        if isinstance(news, str) or isinstance(old_runs, str):
            results.append(_load_error(target, old_runs, news, is_expected))
            continue
        counter = _difference(new_runner, target, old_runs, news, "fabricated")
        compared = len(news)
        if counter is None and options.search_seconds > 0:
            counter, more = _search(new_runner, old_runner, before, target, options.search_seconds)
            compared += more
        reason = ""
        if counter is None:  # equal outputs prove only what ran: coverage of the change
            gap, counter, more = tracing.settle(
                new_runner, old_runner, before, target, max(options.search_seconds, 1.0)
            )
            compared += more
            reason = gap or ""
        limited = new_runner.limited(target) or old_runner.limited(before)
        if counter is None and limited:  # a time-out proves nothing, in either version
            reason = f"unproven: {limited}"
        verdict = BEHAVIOUR_CHANGED if counter is not None else UNPROVEN if reason else COSMETIC
        if counter is not None:
            reason = fabricated_reason(counter)
        seconds = time.perf_counter() - started[target.name]
        distinct = len({r.hash for r in news if not is_failure(r.output)})
        weak = verdict == COSMETIC and distinct < MIN_DISTINCT
        if weak:
            verdict = WEAK
            reason = f"weak: {distinct} distinct output{'' if distinct == 1 else 's'} in {len(news)} fabricated contexts"
        results.append(
            ChangedTarget(
                target.label, verdict, counter, is_expected, compared, seconds, weak, reason
            )
        )
    return results


def _load_error(
    target: Target,
    old_runs: list[ContextRun] | str,
    news: list[ContextRun] | str,
    is_expected: bool,
) -> ChangedTarget:
    """The verdict when either version cannot be loaded: both failing to load is no change."""
    errors = {
        "old": old_runs if isinstance(old_runs, str) else None,
        "new": news if isinstance(news, str) else None,
    }
    if errors["old"] and errors["new"]:
        return ChangedTarget(target.label, COSMETIC, expected=is_expected)
    return ChangedTarget(target.label, BEHAVIOUR_CHANGED, {"error": errors}, is_expected)


def fabricated_reason(counter: dict[str, Any]) -> str:
    """Why a fabricated counterexample is a behaviour change, in one line: the world it comes
    from (an edge world's name says what is unusual about its data: huge, tiny, zero, negative,
    partial...) and the two outputs."""
    inputs = counter.get("inputs") or {}
    where = inputs.get("world") or f"context {counter.get('context')}"
    user = f" user {inputs['user']}" if inputs.get("user") else ""
    old, new = (json.dumps(counter.get(k), sort_keys=True, default=str) for k in ("old", "new"))
    shown = (old[:80] + "...", new[:80] + "...") if len(old) + len(new) > 170 else (old, new)
    return (
        f"behaviour_changed: the versions differ on fabricated data ({where}, {inputs.get('date')}"
        f"{user}, found by {counter.get('found_by')}): old {shown[0]}, new {shown[1]}"
    )


def _runs(runner: SimRunner, target: Target, worlds: list[Any]) -> list[ContextRun] | str:
    try:
        runner.prepare(target)
    except BtbuildError as exc:
        return str(exc)
    return runner.contexts(target, worlds)


def _difference(
    runner: SimRunner, target: Target, old: list[ContextRun], new: list[ContextRun], found_by: str
) -> dict[str, Any] | None:
    for index, (before, after) in enumerate(zip(old, new, strict=False)):
        if before.limited or after.limited:  # timed out (here or upstream): no evidence
            continue
        if before.hash != after.hash:
            return {
                "found_by": found_by,
                "context": index,
                "inputs": runner.describe_inputs(target, after.world, after.user),
                "old": before.output,
                "new": after.output,
            }
    if len(old) != len(new):
        return {
            "found_by": found_by,
            "context": min(len(old), len(new)),
            "inputs": {},
            "old": f"{len(old)} contexts",
            "new": f"{len(new)} contexts",
        }
    return None


def _search(
    new_runner: SimRunner, old_runner: SimRunner, before: Target, target: Target, seconds: float
) -> tuple[dict[str, Any] | None, int]:
    deadline = time.perf_counter() + seconds
    start, compared = SEARCH_START, 0
    while time.perf_counter() < deadline:
        worlds = new_runner.fabricator.worlds(SEARCH_BATCH, start=start)
        news = new_runner.contexts(target, worlds)
        olds = old_runner.contexts(before, worlds)
        compared += len(news)
        counter = _difference(new_runner, target, olds, news, "search")
        if counter is not None:
            return counter, compared
        start += SEARCH_BATCH
    return None, compared
