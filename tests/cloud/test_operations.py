"""Production operations against the emulators: graceful shutdown, fault isolation, back-off,
least privilege. Timings are measured and printed; bounds are generous (a loaded machine)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from tests.cloud.conftest import CloudWorkspace

SLOW_BUILD = """
[calculation.slow]
entry = "slow:slow"
kind = "per_date"
roots = ["prices"]
"""

# Calculations behaving otherwise on the workers than when the build simulates them tell them
# apart by the worker's command line, not by an environment variable: one the code reads is an
# input of its cells, and a worker whose value differs refuses the tasks (docs/hashing.md).
ON_WORKER = '"--idle-exit" in sys.argv'

SLOW = f"""\
import sys
import time


def slow(ctx):
    if {ON_WORKER}:  # on the workers only (not when the build simulates it)
        time.sleep(8)
    return len(ctx.root("prices"))
"""


def _wait_for(predicate: Any, timeout: float, what: str, ws: CloudWorkspace) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}\n{ws.worker_logs()}")


def _build_in_thread(ws: CloudWorkspace, *argv: str) -> tuple[threading.Thread, dict[str, Any]]:
    """``build ... --executor pubsub --format json`` in a thread: its report, or its stderr."""
    outcome: dict[str, Any] = {}

    def build() -> None:
        code, out, err = ws.cli(
            "build", *argv, "--date", "2024-01-03", "--executor", "pubsub", "--format", "json"
        )
        outcome.update(code=code, err=err, report=json.loads(out) if out.strip() else None)

    thread = threading.Thread(target=build)
    thread.start()
    return thread, outcome


def test_sigterm_mid_cell_gives_it_back_to_another_worker_within_two_leases(
    cloud_ws: CloudWorkspace,
) -> None:
    lease = 10
    cloud_ws.edit("BUILD.toml", "lease_seconds = 4\n", f"lease_seconds = {lease}\n")
    cloud_ws.write(
        "calculations/pricing/BUILD.toml",
        (cloud_ws.root / "calculations/pricing/BUILD.toml").read_text() + SLOW_BUILD,
    )
    cloud_ws.write("calculations/pricing/slow.py", SLOW)
    (victim,) = cloud_ws.start_workers(1)
    build, outcome = _build_in_thread(cloud_ws, "//pricing:slow", "--from", "2024-01-03")
    backend = cloud_ws.backend()

    def cell() -> Any:
        return backend.get_cell("slow", "2024-01-03")

    _wait_for(
        lambda: (
            (r := cell()) and r.status == "running" and r.lease_owner.endswith(f":{victim.pid}")
        ),
        90,
        "the victim to start the cell",
        cloud_ws,
    )
    (heir,) = cloud_ws.start_workers(1)
    _wait_for(lambda: "pulling" in cloud_ws.log_of(heir), 60, "the second worker", cloud_ws)
    started = time.monotonic()
    os.kill(victim.pid, signal.SIGTERM)
    _wait_for(
        lambda: (r := cell()) and (r.lease_owner or "").endswith(f":{heir.pid}"),
        4 * lease,
        "the second worker to take the cell over",
        cloud_ws,
    )
    takeover = time.monotonic() - started
    assert victim.wait(timeout=30) == 0, cloud_ws.worker_logs()  # within the grace period
    build.join(timeout=120)
    assert not build.is_alive(), cloud_ws.worker_logs()
    # (printed once the build is over: until then the in-process CLI owns sys.stdout)
    print(f"\nSIGTERM -> cell taken over by another worker in {takeover:.2f} s (lease {lease} s)")
    assert takeover < 2 * lease, cloud_ws.worker_logs()
    report = outcome["report"]
    assert report is not None, outcome["err"]
    assert report["summary"]["ran"] == 1, (report, cloud_ws.worker_logs())
    record = cell()
    # the interrupted attempt was given back, not counted
    assert record is not None and record.status == "committed" and record.attempts == 1, (
        record,
        cloud_ws.worker_logs(),
    )
    assert "given back" in cloud_ws.worker_logs()


ISOLATION_BUILD = """
[calculation.broken]
entry = "broken:broken"
kind = "per_date"
roots = ["prices"]

[calculation.after_broken]
entry = "broken:after"
kind = "per_date"
deps = [":broken"]
"""

KILLER = f"""\
import os
import sys


def broken(ctx):
    if ctx.date.day == 3 and {ON_WORKER}:  # not when the build simulates it
        os._exit(3)  # the worker dies with its message unacked, every time
    return 1


def after(ctx):
    return ctx.dep("broken")
"""


def test_a_worker_killing_calc_dead_letters_only_itself(cloud_ws: CloudWorkspace) -> None:
    """broken shares its (date, pass) task with value and price_level: after the first
    worker dies the task is split per cell, so only broken on 2024-01-03 dead-letters (after
    the subscription's max_delivery_attempts) and every independent cell commits."""
    cloud_ws.write(
        "calculations/pricing/BUILD.toml",
        (cloud_ws.root / "calculations/pricing/BUILD.toml").read_text() + ISOLATION_BUILD,
    )
    cloud_ws.write("calculations/pricing/broken.py", KILLER)
    fleet = cloud_ws.keep_workers(2)
    started = time.monotonic()
    try:
        report = cloud_ws.build("--executor", "pubsub", expect=1)
    finally:
        fleet.stop()
    cells = cloud_ws.cells(report)
    poisoned = {("//pricing:broken", "2024-01-03"): ("dead_letter", "new")}
    blocked = {("//pricing:after_broken", "2024-01-03"): ("blocked", "waiting_for_deps")}
    innocent = {key: value for key, value in cells.items() if key not in {**poisoned, **blocked}}
    print(
        f"\n{len(innocent)} independent cells, {sum(v[0] == 'ran' for v in innocent.values())} "
        f"committed; worker deaths {fleet.deaths}; {time.monotonic() - started:.1f} s"
    )
    assert {key: cells[key] for key in poisoned} == poisoned, (report, cloud_ws.worker_logs())
    assert {key: cells[key] for key in blocked} == blocked, report
    assert len(innocent) == 16 and all(value[0] == "ran" for value in innocent.values()), report
    assert 2 <= fleet.deaths.count(3) <= 7, fleet.deaths  # 1 on the whole task + the cell's own
    with cloud_ws.backend() as backend:
        record = backend.get_cell("broken", "2024-01-03")
        assert record is not None and record.status == "dead_letter"
        assert "times and its workers never finished it" in (record.last_error or ""), record


FLAKY_BUILD = """
[calculation.flaky]
entry = "transient:flaky"
kind = "per_date"
roots = ["prices"]
"""

FLAKY = """\
import pathlib
import sys

COUNTER = pathlib.Path({counter!r})


def flaky(ctx):
    if not ("--idle-exit" in sys.argv):  # not when the build simulates it
        return -1
    n = int(COUNTER.read_text()) if COUNTER.exists() else 0
    COUNTER.write_text(str(n + 1))
    if n < 2:
        raise RuntimeError(f"transient failure {{n + 1}}")
    return n
"""


def test_a_calc_failing_twice_commits_on_its_third_attempt_after_backing_off(
    cloud_ws: CloudWorkspace, tmp_path: Path
) -> None:
    backoff = 2
    cloud_ws.edit("BUILD.toml", "max_attempts = 2\n", "max_attempts = 3\n")
    cloud_ws.edit("BUILD.toml", "retry_backoff = 1\n", f"retry_backoff = {backoff}\n")
    cloud_ws.write(
        "calculations/pricing/BUILD.toml",
        (cloud_ws.root / "calculations/pricing/BUILD.toml").read_text() + FLAKY_BUILD,
    )
    cloud_ws.write(
        "calculations/pricing/transient.py", FLAKY.format(counter=str(tmp_path / "attempts.txt"))
    )
    cloud_ws.start_workers(2)
    build, outcome = _build_in_thread(cloud_ws, "//pricing:flaky", "--from", "2024-01-03")
    backend = cloud_ws.backend()
    seen: set[str] = set()
    while build.is_alive():  # what `btbuild explain` shows between the attempts
        record = backend.get_cell("flaky", "2024-01-03")
        if record is not None and record.status == "failed" and record.last_error:
            seen.add(record.last_error)
        time.sleep(0.1)
    report = outcome["report"]
    assert report is not None, outcome["err"]
    assert report["summary"]["ran"] == 1, (report, cloud_ws.worker_logs())
    record = backend.get_cell("flaky", "2024-01-03")
    runs = sorted(backend.runs("flaky"), key=lambda run: run.started)
    assert record is not None and record.status == "committed" and record.attempts == 3, (
        record,
        runs,
        cloud_ws.worker_logs(),
    )
    runs = sorted(backend.runs("flaky"), key=lambda run: run.started)
    assert [run.status for run in runs] == ["failed", "failed", "committed"], runs
    gaps = [b.started - (a.started + a.duration) for a, b in zip(runs, runs[1:], strict=False)]
    print(
        f"\nretries after {', '.join(f'{gap:.2f} s' for gap in gaps)} (back-off {backoff}, {2 * backoff} s)"
    )
    assert gaps[0] >= 0.8 * backoff and gaps[1] >= 0.8 * 2 * backoff, gaps
    assert gaps[1] > gaps[0], gaps
    assert any("attempt 1 of 3; next retry at" in error for error in seen), seen
    assert any("attempt 2 of 3; next retry at" in error for error in seen), seen


def test_dispatcher_and_workers_never_call_a_create_api(
    cloud_ws: CloudWorkspace, monkeypatch: Any
) -> None:
    from google.cloud import firestore_admin_v1, pubsub_v1

    from btbuild.execution.pubsub import serve, worker_environment
    from btbuild.session import Session

    calls: list[str] = []

    def refuse(name: str) -> Any:
        def create(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            raise AssertionError(f"{name} called by a runtime process")

        return create

    for cls, names in (
        (pubsub_v1.PublisherClient, ("create_topic", "update_topic")),
        (pubsub_v1.SubscriberClient, ("create_subscription", "update_subscription")),
        (firestore_admin_v1.FirestoreAdminClient, ("create_index", "update_field")),
    ):
        for name in names:
            monkeypatch.setattr(cls, name, refuse(name))
    session = Session(cloud_ws.root)
    env, backend = worker_environment(session)
    stats: dict[str, Any] = {}
    worker = threading.Thread(
        target=lambda: stats.update(run=serve(env, backend, idle_exit=3, ack_deadline=10))
    )
    worker.start()
    try:
        report = cloud_ws.build("--executor", "pubsub")
    finally:
        worker.join(timeout=60)
        session.close()
    assert report["summary"]["ran"] == 12 and calls == []
    assert stats["run"].groups_finished >= 1
