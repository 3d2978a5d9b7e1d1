"""The built-in executors, registered through the ``btbuild_executors`` hook like any
third-party one."""

from __future__ import annotations

from collections.abc import Sequence

from btbuild.execution.executors import Executor
from btbuild.execution.local import LocalExecutor
from btbuild.execution.pubsub_executor import PubSubExecutor
from btbuild.plugins.hookspecs import hookimpl


@hookimpl
def btbuild_executors() -> Sequence[Executor]:
    return [LocalExecutor(), PubSubExecutor()]
