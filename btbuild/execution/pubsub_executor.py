"""The Pub/Sub executor (``--executor pubsub``): groups are published as task messages and
run by ``btbuild worker`` processes on the shared Firestore cache (see docs/deploy.md).

Registered through the ``btbuild_executors`` hook (btbuild/execution/plugin.py); the Google
client libraries are imported only when a build uses it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING

from btbuild.errors import UsageError
from btbuild.execution.executors import Executor, ExecutorRun

if TYPE_CHECKING:
    from btbuild.execution.dispatch import Submit
    from btbuild.execution.report import BuildRequest
    from btbuild.storage.base import Backend
    from btbuild.workspace.model import Workspace

NEEDS_FIRESTORE = (
    '--executor pubsub needs the shared cache: set [storage] backend = "firestore" in BUILD.toml'
)


class PubSubExecutor(Executor):
    name = "pubsub"
    description = '`btbuild worker` processes (needs [storage] backend = "firestore")'

    def check(self, workspace: Workspace, backend: Backend, request: BuildRequest) -> None:
        """The cache can hold run documents (Firestore); for a real build, Pub/Sub has credentials and the topics
        and subscriptions exist (one-line errors naming the fix, exit 2)."""
        from btbuild.execution.pubsub.dispatcher import preflight
        from btbuild.storage.documents import RunDocuments

        if not isinstance(backend, RunDocuments):
            raise UsageError(NEEDS_FIRESTORE)
        if not request.dry_run:
            preflight(backend, workspace.storage.project)

    def open(self, run: ExecutorRun) -> AbstractContextManager[Submit]:
        return _dispatching(run)


@contextmanager
def _dispatching(run: ExecutorRun) -> Iterator[Submit]:
    from btbuild.execution.pubsub.dispatcher import Dispatcher
    from btbuild.storage.documents import RunDocuments

    backend = run.context.backend
    if not isinstance(backend, RunDocuments):
        raise UsageError(NEEDS_FIRESTORE)
    project = run.context.workspace.storage.project
    with Dispatcher(backend, run.run_id, project=project) as dispatcher:
        yield dispatcher.submit
