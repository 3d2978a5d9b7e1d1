"""alert = true against the Pub/Sub emulator: one message per changed result, none for a
rebuild that changes nothing, under --jobs 2 and on Pub/Sub workers."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest

from tests.cloud.conftest import CloudWorkspace
from tests.execution.conftest import Workspace, make_workspace, write_day

PROJECT = "btbuild-local"


class Topic:
    def __init__(self, name: str | None = None) -> None:
        from google.cloud import pubsub_v1

        self.name = name or f"alerts-{uuid.uuid4().hex[:10]}"
        self.attributes: list[dict[str, str]] = []  # of every message drained, in order
        self.topic = f"projects/{PROJECT}/topics/{self.name}"
        self.subscription = f"projects/{PROJECT}/subscriptions/{self.name}-test"
        self.publisher = pubsub_v1.PublisherClient()
        self.subscriber = pubsub_v1.SubscriberClient()
        self.publisher.create_topic(request={"name": self.topic})
        self.subscriber.create_subscription(
            request={"name": self.subscription, "topic": self.topic}
        )

    def drain(self, settle: float = 2.0) -> list[dict]:
        """Every message published so far (pulled and acknowledged), once ``settle`` seconds
        pass without one (1 s missed a message under load)."""
        found: list[dict] = []
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < settle:
            response = self.subscriber.pull(
                request={"subscription": self.subscription, "max_messages": 100},
                timeout=5,
            )
            if response.received_messages:
                quiet_since = time.monotonic()
                found += [json.loads(m.message.data) for m in response.received_messages]
                self.attributes += [dict(m.message.attributes) for m in response.received_messages]
                self.subscriber.acknowledge(
                    request={
                        "subscription": self.subscription,
                        "ack_ids": [m.ack_id for m in response.received_messages],
                    }
                )
        return found


@pytest.fixture
def topic(cloud: dict[str, str]) -> Topic:
    return Topic()


def alerting(ws: Workspace, topic: Topic) -> Workspace:
    ws.write(
        "BUILD.toml", (ws.root / "BUILD.toml").read_text() + f'\n[alerts]\ntopic = "{topic.name}"\n'
    )
    ws.edit(
        "calculations/pricing/BUILD.toml",
        'entry = "totals:total"\n',
        'entry = "totals:total"\nalert = true\n',
    )
    ws.edit(
        "calculations/pricing/BUILD.toml",
        'entry = "calcs:value"\n',
        'entry = "calcs:value"\nalert = true\n',
    )
    return ws


def changed(report: dict, labels: set[str]) -> list[tuple[str, str]]:
    return sorted(
        (c["label"], c["date"])
        for c in report["cells"]
        if c["status"] == "ran" and c["label"] in labels
    )


LABELS = {"//pricing:total", "//pricing:value"}


def test_one_message_per_changed_result_with_jobs_2(tmp_path: Path, topic: Topic) -> None:
    ws = alerting(make_workspace(tmp_path / "ws"), topic)
    report = ws.build("--jobs", "2")
    messages = topic.drain()
    assert sorted((m["target"], m["date"]) for m in messages) == changed(report, LABELS)
    assert len(messages) == 6
    total = next(
        m for m in messages if m["target"] == "//pricing:total" and m["date"] == "2024-01-02"
    )
    assert total["result"] == ws.backend().read_result("total", "2024-01-02")
    assert total["previous_result_hash"] is None and total["kind"] == "per_date"
    ws.build("--jobs", "2")
    assert topic.drain() == []  # a rebuild that changes nothing publishes nothing
    from datetime import date

    write_day(ws.root, date(2024, 1, 2), price_bump=1.0)
    report = ws.build("--jobs", "2")
    messages = topic.drain()
    assert sorted((m["target"], m["date"]) for m in messages) == [
        ("//pricing:total", "2024-01-02"),
        ("//pricing:value", "2024-01-02"),
    ]
    assert all(m["previous_result_hash"] for m in messages)
    ws.edit(
        "calculations/pricing/calcs.py",
        "def value(ctx):\n",
        "def value(ctx):\n    # reformatted, same results\n",
    )
    ws.edit("calculations/pricing/calcs.py", 'ctx.root("prices")', "ctx.root( 'prices' )")
    ws.edit(
        "calculations/pricing/calcs.py", "return sum(", "return 0 + sum("
    )  # same values: the simulation may prove it cosmetic, so force the re-run
    report = ws.build("//pricing:value", "--force", "--jobs", "2")
    assert changed(report, {"//pricing:value"})  # value re-ran ...
    assert topic.drain() == []  # ... but its results did not change: no message


def test_one_message_per_changed_result_on_pubsub_workers(
    cloud_ws: CloudWorkspace, topic: Topic
) -> None:
    alerting(cloud_ws, topic)
    cloud_ws.start_workers(2)
    # a worker publishes left-over alerts before it pulls: one still starting while the other
    # commits could publish that commit's pending alert a second time (at least once, by
    # design; seen under load), so the build starts once both pull
    deadline = time.monotonic() + 60
    while cloud_ws.worker_logs().count(" pulling ") < 2:
        assert time.monotonic() < deadline, cloud_ws.worker_logs()
        time.sleep(0.1)
    report = cloud_ws.build("--executor", "pubsub")
    messages = topic.drain()
    assert sorted((m["target"], m["date"]) for m in messages) == changed(report, LABELS), (
        cloud_ws.worker_logs()
    )
    assert len(messages) == 6
    cloud_ws.build("--executor", "pubsub")
    assert topic.drain() == []


def test_a_missing_topic_fails_the_build_and_the_next_build_publishes_the_alert(
    tmp_path: Path, cloud: dict[str, str]
) -> None:
    """A publish that fails leaves the alert in the outbox (SQLite cache here): the build
    exits 1, and once the topic exists the next build publishes it first, then deletes it."""
    name = f"late-{uuid.uuid4().hex[:10]}"
    ws = make_workspace(tmp_path / "ws")
    ws.write("BUILD.toml", (ws.root / "BUILD.toml").read_text() + f'\n[alerts]\ntopic = "{name}"\n')
    ws.edit(
        "calculations/pricing/BUILD.toml",
        'entry = "levels:level"\n',
        'entry = "levels:level"\nalert = true\n',
    )
    report = ws.build("//pricing:price_level", expect=1)
    ran = sorted(c["date"] for c in report["cells"] if c["status"] == "ran")
    assert ran == ["2024-01-01", "2024-01-02", "2024-01-03"]
    assert all(
        f"topic projects/btbuild-local/topics/{name} does not exist" in c["detail"]
        for c in report["cells"]
    )
    pending = {alert.date: alert for alert in ws.backend().pending_alerts().values()}
    assert sorted(pending) == ran and {a.target for a in pending.values()} == {"price_level"}
    topic = Topic(name)
    report = ws.build("//pricing:price_level")
    assert not [c for c in report["cells"] if c["status"] == "ran"]  # nothing to rebuild ...
    assert report["repairs"] == [
        f"left-over alert for //pricing:price_level on {day} published" for day in ran
    ]
    messages = topic.drain()  # ... but the alerts went out, once each
    assert sorted((m["name"], m["date"], m["superseded"]) for m in messages) == [
        ("price_level", day, False) for day in ran
    ]
    for message, attributes in zip(messages, topic.attributes, strict=True):
        assert message["result"] == ws.backend().read_result("price_level", message["date"])
        assert attributes["alert_id"] == pending[message["date"]].alert_id
    assert ws.backend().pending_alerts() == {}


def test_a_build_killed_between_commit_and_publish_leaves_the_alert_for_the_next_build(
    cloud_ws: CloudWorkspace, topic: Topic, tmp_path: Path
) -> None:
    """kill -9 right after the commit of an alert target's cell, before its publish (the
    test hook holds the process there): the Firestore outbox keeps the alert, and the next
    build publishes it before building the rest."""
    import os
    import signal
    import subprocess
    import sys

    from btbuild.execution.commits import HOLD_BEFORE_ALERT
    from tests.cloud.conftest import REPO

    cloud_ws.write(
        "BUILD.toml",
        (cloud_ws.root / "BUILD.toml").read_text() + f'\n[alerts]\ntopic = "{topic.name}"\n',
    )
    cloud_ws.edit(
        "calculations/pricing/BUILD.toml",
        'entry = "levels:level"\n',
        'entry = "levels:level"\nalert = true\n',
    )
    hold = tmp_path / "held.pid"
    env = dict(os.environ, **cloud_ws.env, PYTHONPATH=str(REPO), **{HOLD_BEFORE_ALERT: str(hold)})
    build = subprocess.Popen(
        [sys.executable, "-m", "btbuild", "--workspace", str(cloud_ws.root), "build",
         "//pricing:price_level", "--date", "2024-01-03"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not hold.exists() or not hold.read_text():
            assert build.poll() is None, build.stderr.read() if build.stderr else ""
            assert time.monotonic() < deadline, "the build never reached its first alert"
            time.sleep(0.05)
        os.kill(int(hold.read_text()), signal.SIGKILL)  # the committing process, by its pid
        build.wait(timeout=30)
    finally:
        if build.poll() is None:
            os.killpg(build.pid, signal.SIGKILL)
            build.wait()
    backend = cloud_ws.backend()
    [pending] = backend.pending_alerts().values()
    committed = backend.get_cell("price_level", pending.date)
    assert committed.generation == pending.generation  # the commit itself was durable
    cloud_ws.start_workers(1)  # a worker publishes it at start, before it pulls
    deadline = time.monotonic() + 60
    while "pulling" not in cloud_ws.worker_logs():
        assert time.monotonic() < deadline, cloud_ws.worker_logs()
        time.sleep(0.1)
    cloud_ws.stop_workers()
    assert "left-over alert for //pricing:price_level" in cloud_ws.worker_logs()
    [message] = topic.drain()  # one: the killed build published nothing
    assert (message["date"], topic.attributes[0]["alert_id"]) == (pending.date, pending.alert_id)
    assert message["result"] == backend.read_result("price_level", pending.date)
    assert backend.pending_alerts() == {}
    cloud_ws.build("//pricing:price_level")  # the cells the killed build did not reach
    later = topic.drain()
    assert sorted(m["date"] for m in [message, *later]) == [
        "2024-01-01",
        "2024-01-02",
        "2024-01-03",
    ]
    assert backend.pending_alerts() == {}
