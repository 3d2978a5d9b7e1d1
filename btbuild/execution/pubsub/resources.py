"""Pub/Sub resource names, clients, and the existence check every runtime process makes.

Runtime processes (the dispatcher, the workers, any other publisher such as alerts) never
create anything: they open clients with :func:`publisher_client` / :func:`subscriber_client`
(one-line :class:`CloudSetupError` when credentials or the emulator setting are missing) and
call :func:`check_resources`, which names what is missing and the command that creates it.
Creating is the job of ``btbuild deploy`` (:mod:`btbuild.execution.pubsub.deploy`), run once
with admin rights.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from btbuild.errors import CloudSetupError, StorageError
from btbuild.execution.backoff import MAX_BACKOFF_SECONDS as MAX_BACKOFF_SECONDS
from btbuild.execution.backoff import backoff_seconds as backoff_seconds
from btbuild.storage.firestore import check_credentials

ACK_DEADLINE_SECONDS = 60  # extended every third of it while a worker runs the group
MIN_DELIVERY_ATTEMPTS = 5  # Pub/Sub's range for max_delivery_attempts is 5..100
MAX_DELIVERY_ATTEMPTS = 100
DEPLOY_HINT = (
    "create them once with `btbuild deploy` (needs roles/pubsub.editor; see docs/deploy.md)"
)


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

    def topic_path(self, suffix: str) -> str:
        """``projects/{project}/topics/{base}.{suffix}``: any topic of this workspace (the
        task queue, its dead letters, or another feature's, e.g. alerts)."""
        return f"projects/{self.project}/topics/{self.base}.{suffix}"

    def subscription_path(self, suffix: str) -> str:
        return f"projects/{self.project}/subscriptions/{self.base}.{suffix}"

    @property
    def topic(self) -> str:
        return self.topic_path("tasks")

    @property
    def subscription(self) -> str:
        return self.subscription_path("workers")

    @property
    def dead_topic(self) -> str:
        return self.topic_path("dead")

    @property
    def dead_subscription(self) -> str:
        return self.subscription_path("dead.dispatch")


def short(path: str) -> str:
    """The last segment of a resource path (what `gcloud` commands take)."""
    return path.rsplit("/", 1)[-1]


def first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


def publisher_client() -> Any:
    check_credentials("pubsub", "PUBSUB_EMULATOR_HOST")
    from google.cloud import pubsub_v1  # type: ignore[attr-defined]  # namespace package: no stubs

    return pubsub_v1.PublisherClient()


def subscriber_client() -> Any:
    check_credentials("pubsub", "PUBSUB_EMULATOR_HOST")
    from google.cloud import pubsub_v1  # type: ignore[attr-defined]  # namespace package: no stubs

    return pubsub_v1.SubscriberClient()


@dataclass(frozen=True)
class SubscriptionSettings:
    """What a worker needs to know of its subscription (read, never set, at start)."""

    max_delivery_attempts: int  # 0: no dead-letter policy (btbuild counts deliveries itself)
    ack_deadline: int


def check_resources(
    names: Names,
    *,
    topics: Iterable[str] = (),
    subscriptions: Iterable[str] = (),
    publisher: Any = None,
    subscriber: Any = None,
    who: str = "btbuild",
) -> dict[str, Any]:
    """Check that the topics and subscriptions exist (``get``, needs roles/pubsub.viewer);
    returns the subscriptions found by path. :class:`CloudSetupError` names every missing
    resource and the command that creates them."""
    from google.api_core import exceptions as api

    missing: list[str] = []
    found: dict[str, Any] = {}
    try:
        for topic in topics:
            try:
                publisher.get_topic(request={"topic": topic})
            except api.NotFound:
                missing.append(f"topic {short(topic)}")
        for subscription in subscriptions:
            try:
                found[subscription] = subscriber.get_subscription(
                    request={"subscription": subscription}
                )
            except api.NotFound:
                missing.append(f"subscription {short(subscription)}")
    except api.PermissionDenied as exc:
        raise CloudSetupError(
            f"pubsub {names.project}: {who} may not read its topics and subscriptions "
            f"({first_line(exc)}): grant it roles/pubsub.viewer (see docs/deploy.md)"
        ) from None
    except api.GoogleAPIError as exc:
        raise StorageError(
            f"pubsub {names.project}: cannot check topics and subscriptions: {first_line(exc)}"
        ) from None
    if missing:
        raise CloudSetupError(
            f"pubsub {names.project}: {who} needs {', '.join(missing)}, which do not exist: "
            + DEPLOY_HINT
        )
    return found


def subscription_settings(subscription: Any) -> SubscriptionSettings:
    policy = subscription.dead_letter_policy
    attempts = int(policy.max_delivery_attempts) if policy and policy.dead_letter_topic else 0
    return SubscriptionSettings(attempts, int(subscription.ack_deadline_seconds or 10))


def delivery_limit(max_attempts: int) -> int:
    """The subscription's ``max_delivery_attempts`` for ``[execution] max_attempts``: at
    least that many (every failed attempt of a cell is a delivery), within Pub/Sub's 5..100."""
    return min(MAX_DELIVERY_ATTEMPTS, max(MIN_DELIVERY_ATTEMPTS, max_attempts))
