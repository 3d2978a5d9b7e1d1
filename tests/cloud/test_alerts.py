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
    def __init__(self) -> None:
        from google.cloud import pubsub_v1

        self.name = f"alerts-{uuid.uuid4().hex[:10]}"
        self.topic = f"projects/{PROJECT}/topics/{self.name}"
        self.subscription = f"projects/{PROJECT}/subscriptions/{self.name}-test"
        self.publisher = pubsub_v1.PublisherClient()
        self.subscriber = pubsub_v1.SubscriberClient()
        self.publisher.create_topic(request={"name": self.topic})
        self.subscriber.create_subscription(
            request={"name": self.subscription, "topic": self.topic}
        )

    def drain(self, settle: float = 2.0) -> list[dict]:
        """Every message published so far (pulled and acknowledged)."""
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
    report = cloud_ws.build("--executor", "pubsub")
    messages = topic.drain()
    assert sorted((m["target"], m["date"]) for m in messages) == changed(report, LABELS), (
        cloud_ws.worker_logs()
    )
    assert len(messages) == 6
    cloud_ws.build("--executor", "pubsub")
    assert topic.drain() == []


def test_a_missing_topic_fails_the_build_after_the_commit(
    tmp_path: Path, cloud: dict[str, str]
) -> None:
    ws = make_workspace(tmp_path / "ws")
    ws.write(
        "BUILD.toml", (ws.root / "BUILD.toml").read_text() + '\n[alerts]\ntopic = "no-such-topic"\n'
    )
    ws.edit(
        "calculations/pricing/BUILD.toml",
        'entry = "levels:level"\n',
        'entry = "levels:level"\nalert = true\n',
    )
    report = ws.build("//pricing:price_level", expect=1)
    cell = next(c for c in report["cells"] if c["status"] == "ran")
    assert "topic projects/btbuild-local/topics/no-such-topic does not exist" in cell["detail"]
