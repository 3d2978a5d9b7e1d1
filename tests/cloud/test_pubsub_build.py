"""Builds through Pub/Sub workers against the emulators."""

from __future__ import annotations

from pathlib import Path

from tests.cloud.conftest import CloudWorkspace, make_workspace


def results(backend, report) -> dict:
    found = {}
    for cell in report["cells"]:
        name = cell["label"].split(":")[1]
        record = backend.get_cell(name, cell["date"])
        found[(name, cell["date"])] = (
            record.result_hash if record else None,
            backend.read_result(name, cell["date"]),
        )
    return found


def test_three_workers_match_a_local_sqlite_build(cloud_ws: CloudWorkspace, tmp_path: Path) -> None:
    local = make_workspace(tmp_path / "local", "")
    expected = local.build()
    cloud_ws.start_workers(3)
    report = cloud_ws.build("--executor", "pubsub")
    assert report == expected, cloud_ws.worker_logs()
    assert report["summary"]["ran"] == 12
    with local.backend() as sqlite, cloud_ws.backend() as firestore:
        assert results(firestore, report) == results(sqlite, expected)
    again = cloud_ws.build("--executor", "pubsub")
    assert again["summary"]["skipped"] == 12 and again["summary"]["ran"] == 0


def test_user_shards_on_workers_match_a_local_unsharded_build(
    cloud_ws: CloudWorkspace, tmp_path: Path
) -> None:
    """Per_user cells as 2 parts on 3 workers, combined by a worker: same results and hashes."""
    local = make_workspace(tmp_path / "local", "")
    expected = local.build()
    cloud_ws.edit("BUILD.toml", "max_attempts = 2\n", "max_attempts = 2\nuser_shards = 2\n")
    cloud_ws.start_workers(3)
    report = cloud_ws.build("--executor", "pubsub")
    assert report == expected, cloud_ws.worker_logs()
    with local.backend() as sqlite, cloud_ws.backend() as firestore:
        assert results(firestore, report) == results(sqlite, expected)
        assert firestore.get_cell("value~2024-01-01~1of2", "2024-01-01") is None  # parts deleted


def test_a_worker_killed_mid_task_is_replaced_by_redelivery(cloud_ws: CloudWorkspace) -> None:
    import os
    import signal
    import threading
    import time

    cloud_ws.edit(
        "calculations/pricing/calcs.py",
        "def value(ctx):\n",
        "def value(ctx):\n    import time\n    time.sleep(0.05)\n",
    )
    (victim,) = cloud_ws.start_workers(1)
    outcome: dict = {}
    build = threading.Thread(
        target=lambda: outcome.update(report=cloud_ws.build("--executor", "pubsub", expect=None))
    )
    build.start()
    backend = cloud_ws.backend()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        running = [
            r
            for r in backend.get_cells(
                ["value"], ["2024-01-01", "2024-01-02", "2024-01-03"]
            ).values()
            if r.status == "running" and (r.lease_owner or "").endswith(f":{victim.pid}")
        ]
        if running:
            break
        time.sleep(0.1)
    assert running, cloud_ws.worker_logs()
    os.kill(victim.pid, signal.SIGKILL)  # mid-task: it holds a lease and an unacked message
    victim.wait(timeout=10)
    cloud_ws.start_workers(2)
    build.join(timeout=120)
    assert not build.is_alive(), cloud_ws.worker_logs()
    report = outcome["report"]
    assert report["summary"]["ran"] == 12 and report["summary"]["failed"] == 0, (
        report,
        cloud_ws.worker_logs(),
    )
    record = backend.get_cell(running[0].target, running[0].date)
    assert (
        record is not None and record.status == "committed" and record.attempts == 2
    )  # taken over once
    takeovers = [run for run in backend.runs(running[0].target) if run.status == "taken_over"]
    assert [(run.date, run.worker_id) for run in takeovers] == [
        (running[0].date, running[0].lease_owner)
    ], takeovers


BROKEN_BUILD = """
[calculation.broken]
entry = "broken:broken"
kind = "per_date"
roots = ["prices"]

[calculation.after_broken]
entry = "broken:after"
kind = "per_date"
deps = [":broken"]
"""

BROKEN = """\
def broken(ctx):
    raise RuntimeError("always")


def after(ctx):
    return ctx.dep("broken")
"""


def test_a_target_that_always_raises_is_dead_lettered_and_the_rest_completes(
    cloud_ws: CloudWorkspace,
) -> None:
    cloud_ws.write(
        "calculations/pricing/BUILD.toml",
        (cloud_ws.root / "calculations/pricing/BUILD.toml").read_text() + BROKEN_BUILD,
    )
    cloud_ws.write("calculations/pricing/broken.py", BROKEN)
    cloud_ws.start_workers(2)
    report = cloud_ws.build("--executor", "pubsub", expect=1)
    cells = cloud_ws.cells(report)
    broken = {key: value for key, value in cells.items() if key[0] == "//pricing:broken"}
    assert set(broken.values()) == {("dead_letter", "new")}, (report, cloud_ws.worker_logs())
    assert {value for key, value in cells.items() if key[0] == "//pricing:after_broken"} == {
        ("blocked", "waiting_for_deps")
    }
    assert report["summary"]["ran"] == 12 and report["summary"]["dead_letter"] == 3
    with cloud_ws.backend() as backend:
        record = backend.get_cell("broken", "2024-01-02")
        assert record is not None and record.status == "dead_letter" and record.attempts == 2
        assert "RuntimeError: always" in (record.last_error or "")


def test_a_build_without_workers_says_what_it_waits_for(
    cloud_ws: CloudWorkspace, monkeypatch
) -> None:
    import threading
    import time

    from btbuild.execution.pubsub import dispatcher

    monkeypatch.setattr(dispatcher, "WAIT_NOTICE_SECONDS", 1.0)
    result: dict = {}
    build = threading.Thread(
        target=lambda: result.update(
            zip(
                ("code", "out", "err"),
                cloud_ws.cli(
                    "build",
                    "//pricing:price_level",
                    "--date",
                    "2024-01-01",
                    "--executor",
                    "pubsub",
                    "--format",
                    "json",
                ),
                strict=True,
            )
        )
    )
    build.start()
    time.sleep(4)  # nobody is pulling the tasks yet
    cloud_ws.start_workers(1)
    build.join(timeout=120)
    assert not build.is_alive(), cloud_ws.worker_logs()
    assert result["code"] == 0, result["err"]
    assert "btbuild: waiting for workers: 1 task(s) of run" in result["err"]
    assert "is `btbuild worker` running for this workspace?" in result["err"]
