"""Pub/Sub resource names, clients, and their setup."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass

from btbuild.errors import StorageError

ACK_DEADLINE_SECONDS = 60  # extended every third of it while a worker runs the group


@dataclass(frozen=True)
class Names:
    """Pub/Sub resource names derived from the storage prefix (``btbuild/demo`` ->
    ``btbuild.demo.tasks``, ``btbuild.demo.workers``, ``btbuild.demo.dead``, ...)."""

    project: str
    prefix: str

    @property
    def base(self) -> str:
        base = re.sub(r"[^A-Za-z0-9_.\-]", ".", self.prefix.replace("/", "."))
        return base if base[:1].isalpha() and not base.startswith("goog") else f"btbuild.{base}"

    @property
    def topic(self) -> str:
        return f"projects/{self.project}/topics/{self.base}.tasks"

    @property
    def subscription(self) -> str:
        return f"projects/{self.project}/subscriptions/{self.base}.workers"

    @property
    def dead_topic(self) -> str:
        return f"projects/{self.project}/topics/{self.base}.dead"

    @property
    def dead_subscription(self) -> str:
        return f"projects/{self.project}/subscriptions/{self.base}.dead.dispatch"


def ensure_resources(
    names: Names, max_attempts: int, ack_deadline: int = ACK_DEADLINE_SECONDS
) -> None:
    """Create the topics and subscriptions if missing (production: see docs/deploy.md).

    Pub/Sub accepts 5..100 for ``max_delivery_attempts``; the workers enforce ``max_attempts``
    themselves as well, so a smaller value (or an emulator that ignores the policy) still ends
    a poison task after ``max_attempts`` deliveries."""
    from google.api_core import exceptions as api
    from google.cloud import pubsub_v1  # type: ignore[attr-defined]  # namespace package: no stubs

    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    try:
        for topic in (names.topic, names.dead_topic):
            with contextlib.suppress(api.AlreadyExists):
                publisher.create_topic(request={"name": topic})
        policy = {
            "dead_letter_topic": names.dead_topic,
            "max_delivery_attempts": min(100, max(5, max_attempts)),
        }
        for subscription, topic, extra in (
            (names.subscription, names.topic, {"dead_letter_policy": policy}),
            (names.dead_subscription, names.dead_topic, {}),
        ):
            with contextlib.suppress(api.AlreadyExists):
                subscriber.create_subscription(
                    request={
                        "name": subscription,
                        "topic": topic,
                        "ack_deadline_seconds": ack_deadline,
                        **extra,
                    }
                )
    except api.GoogleAPIError as exc:
        raise StorageError(
            f"pubsub {names.project}: cannot create topics and subscriptions for {names.base}: {first_line(exc)}"
        ) from None
    finally:
        subscriber.close()


def first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__
