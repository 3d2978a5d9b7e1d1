"""The document store the Pub/Sub executor keeps its run and task documents in.

The executor does not depend on a concrete backend: it needs a client, collections under the
cache's prefix, one-line errors and transactions, which :class:`RunDocuments` names. The
Firestore backend provides them (``isinstance(backend, RunDocuments)`` tells whether a
configured backend can host a distributed build).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol, TypeVar, runtime_checkable

T = TypeVar("T")


@runtime_checkable
class RunDocuments(Protocol):
    """Run and task documents beside the cache (Firestore's API types are ``Any``)."""

    project: str
    prefix: str
    client: Any  # google.cloud.firestore.Client (batches, get_all)

    def collection(self, name: str) -> Any:
        """A collection under the cache's prefix."""

    def calling(self, what: str) -> AbstractContextManager[None]:
        """Turn the store's and the transport's errors into one-line StorageErrors."""

    def transact(self, what: str, body: Callable[[Any], T]) -> T:
        """Run ``body(transaction)`` in one transaction, retried on contention (``body``
        may run more than once, so it has no other side effects)."""

    def index_commands(self) -> list[str]:
        """The commands that create the indexes the store's queries need (docs/deploy.md)."""

    def create_indexes(self) -> list[str]:
        """Create those indexes (``btbuild deploy``, admin rights); one line per index."""
