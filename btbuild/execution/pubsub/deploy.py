"""``btbuild deploy``: create every topic, subscription and Firestore index once, with admin
rights. The only module that calls a create API; dispatcher and workers only check
(:func:`btbuild.execution.pubsub.resources.check_resources`).

Idempotent: what exists is left alone, except the workers' subscription, whose ack deadline,
dead-letter policy and retry policy are updated when they differ from the workspace's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from btbuild.errors import CloudSetupError, StorageError
from btbuild.execution.pubsub.resources import (
    ACK_DEADLINE_SECONDS,
    MAX_BACKOFF_SECONDS,
    Names,
    delivery_limit,
    first_line,
    publisher_client,
    short,
    subscriber_client,
)
from btbuild.storage.documents import RunDocuments


@dataclass(frozen=True)
class Plan:
    """What ``btbuild deploy`` makes for one workspace."""

    names: Names
    max_delivery_attempts: int
    ack_deadline: int
    retry_backoff: int

    def subscriptions(self) -> list[tuple[str, str, dict[str, Any]]]:
        """(subscription, topic, settings) of every subscription."""
        names = self.names
        workers = {
            "ack_deadline_seconds": self.ack_deadline,
            "dead_letter_policy": {
                "dead_letter_topic": names.dead_topic,
                "max_delivery_attempts": self.max_delivery_attempts,
            },
            "retry_policy": {
                "minimum_backoff": {"seconds": self.retry_backoff},
                "maximum_backoff": {"seconds": MAX_BACKOFF_SECONDS},
            },
        }
        dead = {"ack_deadline_seconds": ACK_DEADLINE_SECONDS}
        return [
            (names.subscription, names.topic, workers),
            (names.dead_subscription, names.dead_topic, dead),
        ]

    def gcloud(self, backend: RunDocuments) -> list[str]:
        """The same resources as `gcloud` commands (for operators who prefer them)."""
        names, p = self.names, f"--project={self.names.project}"
        lines = [f"gcloud pubsub topics create {short(names.topic)} {short(names.dead_topic)} {p}"]
        lines.append(
            f"gcloud pubsub subscriptions create {short(names.subscription)} {p} "
            f"--topic={short(names.topic)} --ack-deadline={self.ack_deadline} "
            f"--dead-letter-topic={short(names.dead_topic)} "
            f"--max-delivery-attempts={self.max_delivery_attempts} "
            f"--min-retry-delay={self.retry_backoff}s --max-retry-delay={MAX_BACKOFF_SECONDS}s"
        )
        lines.append(
            f"gcloud pubsub subscriptions create {short(names.dead_subscription)} {p} "
            f"--topic={short(names.dead_topic)}"
        )
        lines.extend(backend.index_commands())
        lines.extend(service_agent_commands(names))
        return lines


def service_agent_commands(names: Names) -> list[str]:
    """Pub/Sub's service agent forwards dead letters: it needs publish on the dead topic and
    subscribe on the workers' subscription (IAM on the project number: printed, not done)."""
    p = f"--project={names.project}"
    agent = (
        f"serviceAccount:service-$(gcloud projects describe {names.project} "
        "--format='value(projectNumber)')@gcp-sa-pubsub.iam.gserviceaccount.com"
    )
    return [
        f'gcloud pubsub topics add-iam-policy-binding {short(names.dead_topic)} {p} --member="{agent}" --role=roles/pubsub.publisher',
        f'gcloud pubsub subscriptions add-iam-policy-binding {short(names.subscription)} {p} --member="{agent}" --role=roles/pubsub.subscriber',
    ]


def plan_for(session: Any, ack_deadline: int = ACK_DEADLINE_SECONDS) -> tuple[Plan, Any]:
    backend = session.backend
    if not isinstance(backend, RunDocuments):
        raise CloudSetupError(
            f'{session.root / "BUILD.toml"}: btbuild deploy needs [storage] backend = "firestore"'
        )
    settings = session.workspace.execution
    names = Names(session.workspace.storage.project or backend.project, backend.prefix)
    plan = Plan(names, delivery_limit(settings.max_attempts), ack_deadline, settings.retry_backoff)
    return plan, backend


def deploy(plan: Plan, backend: RunDocuments, log: Callable[[str], None]) -> None:
    """Create what is missing (topics, subscriptions, indexes); log one line per resource."""
    from google.api_core import exceptions as api

    publisher, subscriber = publisher_client(), subscriber_client()
    try:
        for topic in (plan.names.topic, plan.names.dead_topic):
            try:
                publisher.create_topic(request={"name": topic})
                log(f"created topic {topic}")
            except api.AlreadyExists:
                log(f"exists  topic {topic}")
        for subscription, topic, settings in plan.subscriptions():
            _subscription(subscriber, subscription, topic, settings, log)
    except api.PermissionDenied as exc:
        raise CloudSetupError(
            f"pubsub {plan.names.project}: btbuild deploy may not create topics and subscriptions "
            f"({first_line(exc)}): run it as an account with roles/pubsub.editor"
        ) from None
    except api.GoogleAPIError as exc:
        raise StorageError(
            f"pubsub {plan.names.project}: deploy failed: {first_line(exc)}"
        ) from None
    finally:
        subscriber.close()
    for line in backend.create_indexes():
        log(line)
    for line in service_agent_commands(plan.names):
        log(f"to do once by a project owner (dead-letter forwarding): {line}")


def _subscription(
    subscriber: Any, name: str, topic: str, settings: dict[str, Any], log: Callable[[str], None]
) -> None:
    from google.api_core import exceptions as api

    try:
        subscriber.create_subscription(request={"name": name, "topic": topic, **settings})
        log(f"created subscription {name}")
        return
    except api.AlreadyExists:
        pass
    subscriber.update_subscription(
        request={
            "subscription": {"name": name, **settings},
            "update_mask": {"paths": sorted(settings)},
        }
    )
    log(f"exists  subscription {name} (settings updated: {', '.join(sorted(settings))})")
