"""Firestore set-up: the client library, credentials, the collection prefix and the indexes
``btbuild deploy`` creates (a mixin of :class:`~btbuild.storage.firestore.FirestoreBackend`)."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from typing import Any, TypeVar

from btbuild.errors import CloudSetupError, ConfigError, StorageError

T = TypeVar("T")

DEFAULT_PROJECT = "btbuild-local"
_SEGMENT = re.compile(r"[A-Za-z0-9_.\-]+\Z")


def _firestore() -> Any:
    try:
        from google.cloud import firestore
    except ImportError:  # pragma: no cover - the dependency is declared in pyproject
        raise StorageError(
            "[storage] backend = 'firestore' needs google-cloud-firestore: pip install google-cloud-firestore"
        ) from None
    return firestore


def check_prefix(prefix: str) -> list[str]:
    """The prefix's path segments; :class:`ConfigError` if it cannot name Firestore paths."""
    parts = prefix.split("/") if isinstance(prefix, str) else []
    if not parts or not all(
        _SEGMENT.match(part)
        and part not in (".", "..")
        and not (part.startswith("__") and part.endswith("__"))
        for part in parts
    ):
        raise ConfigError(
            f"[storage] prefix = {prefix!r} is not a Firestore path; expected segments of letters, digits, '_', '-', '.' "
            "separated by '/', e.g. 'btbuild/demo'"
        )
    return parts


def check_credentials(service: str, emulator_variable: str) -> None:
    """Raise :class:`CloudSetupError` (one line naming the fix) when neither the emulator
    variable nor Application Default Credentials are set, instead of letting the client
    library fail later with a ``DefaultCredentialsError`` traceback."""
    if os.environ.get(emulator_variable):
        return
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    try:
        google.auth.default()
    except DefaultCredentialsError:
        raise CloudSetupError(
            f"{service}: no Google Cloud credentials: run `gcloud auth application-default login` "
            "(or set GOOGLE_APPLICATION_CREDENTIALS to a service account key file), "
            f"or set {emulator_variable} to use the emulator"
        ) from None


class FirestoreIndexes:
    """The composite indexes and exemptions the backend's queries need."""

    project: str
    cells: Any
    shards: Any
    runs_col: Any

    def index_specs(self) -> list[tuple[str, list[tuple[str, str]]]]:
        """(collection group, [(field, ASCENDING|DESCENDING)]) of every composite index the
        queries need: the summaries and the shards of a target over a date range (the no-op
        analysis and its integrity check), a target's run log."""
        return [
            (self.cells.id, [("target", "ASCENDING"), ("date", "ASCENDING")]),
            (self.shards.id, [("target", "ASCENDING"), ("date", "ASCENDING")]),
            (self.runs_col.id, [("target", "ASCENDING"), ("started", "DESCENDING")]),
        ]

    def unindexed_fields(self) -> list[tuple[str, str]]:
        """(collection group, field) of the big blobs that are never queried: exempt."""
        return [(self.shards.id, "data"), (self.cells.id, "data")]

    def index_commands(self) -> list[str]:
        """The indexes as `gcloud` commands."""
        p = f"--project={self.project}"
        lines = []
        for group, fields in self.index_specs():
            configs = " ".join(
                f"--field-config=field-path={name},order={order.lower()}" for name, order in fields
            )
            lines.append(
                f"gcloud firestore indexes composite create {p} --collection-group={group} {configs}"
            )
        for group, name in self.unindexed_fields():
            lines.append(
                f"gcloud firestore indexes fields update {name} {p} --collection-group={group} --disable-indexes"
            )
        return lines

    def create_indexes(self) -> list[str]:
        """Create the composite indexes and exemptions (``btbuild deploy``; needs
        roles/datastore.indexAdmin). One line per index; the emulator needs none."""
        if os.environ.get("FIRESTORE_EMULATOR_HOST"):
            return ["skipped firestore indexes (the emulator needs none)"]
        from google.api_core import exceptions as api
        from google.cloud import firestore_admin_v1 as admin

        client = admin.FirestoreAdminClient()
        database = f"projects/{self.project}/databases/(default)"
        lines = []
        try:
            for group, fields in self.index_specs():
                index = admin.Index(
                    query_scope=admin.Index.QueryScope.COLLECTION,
                    fields=[
                        admin.Index.IndexField(
                            field_path=name, order=getattr(admin.Index.IndexField.Order, order)
                        )
                        for name, order in fields
                    ],
                )
                what = f"index {group}({', '.join(name for name, _ in fields)})"
                try:
                    client.create_index(parent=f"{database}/collectionGroups/{group}", index=index)
                    lines.append(f"created {what} (Firestore builds it in the background)")
                except api.AlreadyExists:
                    lines.append(f"exists  {what}")
            for group, name in self.unindexed_fields():
                client.update_field(
                    field=admin.Field(
                        name=f"{database}/collectionGroups/{group}/fields/{name}",
                        index_config=admin.Field.IndexConfig(indexes=[]),
                    )
                )
                lines.append(f"exempted {group}.{name} from indexing")
        except api.PermissionDenied as exc:
            raise CloudSetupError(
                f"firestore {self.project}: btbuild deploy may not create indexes "
                f"({str(exc).splitlines()[0]}): run it as an account with roles/datastore.indexAdmin"
            ) from None
        except api.GoogleAPIError as exc:
            raise StorageError(
                f"firestore {self.project}: cannot create indexes: {str(exc).splitlines()[0]}"
            ) from None
        return lines


CONTENTION_PATIENCE = 90.0  # seconds of whole-transaction retries (see :func:`patiently`)


def patiently(attempt: Callable[[], T], refused: Callable[[float], Exception]) -> T:
    """``attempt()`` (one Firestore transaction), again with a growing pause while the client
    gives up on contention (it retries an aborted commit at once, then raises a bare
    ValueError "Failed to commit transaction in N attempts": a process killed inside a
    transaction can hold its locks for a while); ``refused(seconds waited)`` is raised after
    :data:`CONTENTION_PATIENCE` seconds."""
    pause, waited = 0.2, 0.0
    while True:
        try:
            return attempt()
        except ValueError as exc:
            if "Failed to commit transaction" not in str(exc):
                raise
            if waited >= CONTENTION_PATIENCE:
                raise refused(waited) from None
        time.sleep(pause)
        waited, pause = waited + pause, min(pause * 2, 5.0)
