"""Distributed execution: the dispatcher publishes (date, pass) groups to Pub/Sub, workers run them.

The :class:`~btbuild.execution.build.Scheduler` stays in the user's process and decides every
cell; the dispatcher is its ``submit``: it publishes one JSON message per runnable group and
returns a future. Completion is tracked in Firestore next to the cache (``<prefix>/dispatch``).
One module per job:

* :mod:`.wire`: the JSON task messages and stored outcomes;
* :mod:`.resources`: topic and subscription names, clients, checking and creating them;
* :mod:`.runbook`: the run and task documents in Firestore;
* :mod:`.dispatcher`: ``submit(group) -> Future`` and :func:`run_distributed`;
* :mod:`.worker`: ``btbuild worker`` (:func:`serve`);
* :mod:`.lifecycle`: a worker's graceful stop (SIGTERM / SIGINT) and ack deadlines.

The executor itself (``--executor pubsub``) is btbuild/execution/pubsub_executor.py,
registered through the ``btbuild_executors`` hook.

See docs/deploy.md for the protocol, failure handling and the operator's runbook.
"""

from __future__ import annotations

from btbuild.execution.pubsub.dispatcher import Dispatcher, run_distributed
from btbuild.execution.pubsub.resources import Names
from btbuild.execution.pubsub.runbook import RunBook
from btbuild.execution.pubsub.wire import decode_task, encode_task
from btbuild.execution.pubsub.worker import WorkerStats, handle_task, serve, worker_environment

__all__ = [
    "Dispatcher",
    "Names",
    "RunBook",
    "WorkerStats",
    "decode_task",
    "encode_task",
    "handle_task",
    "run_distributed",
    "serve",
    "worker_environment",
]
