"""What a process needs to run cells: workspace, sources, calculation code, the cache.

An :class:`Environment` is made once per process that runs cells (the build itself, each
``--jobs`` worker, each Pub/Sub worker) and shared by every group it runs.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from datetime import date
from typing import TYPE_CHECKING, Any, Protocol

from btbuild.analysis.cells import CellTask, root_fingerprints, target_components
from btbuild.errors import BtbuildError, SourceError
from btbuild.execution.heartbeat import Heartbeat
from btbuild.execution.liveness import owner_id
from btbuild.execution.loader import CalculationLoader, changed_variables
from btbuild.execution.setup import ExecutionContext
from btbuild.plugins.manager import Plugins
from btbuild.plugins.sources import RootSource, unknown_read
from btbuild.storage.base import Backend
from btbuild.workspace.model import Target, Workspace

if TYPE_CHECKING:
    from btbuild.hashing import TargetHashes


def worker_id() -> str:
    """This process as a lease owner: ``<start time>@<host>:<pid>`` (see liveness.py)."""
    return owner_id()


class Hashed(Protocol):
    """A session or an execution context: anything holding the targets' hashes."""

    @property
    def hashes(self) -> Mapping[str, TargetHashes]: ...


def static_hashes(session: Hashed) -> dict[str, str]:
    """Target name -> static hash of the code this process would run."""
    return {name: hashes.static for name, hashes in session.hashes.items()}


def source_failed(
    source: str, day: date, exc: Exception, what: str = "read its users"
) -> SourceError:
    detail = str(exc) if isinstance(exc, BtbuildError) else f"{type(exc).__name__}: {exc}"
    return SourceError(f"root source {source!r} failed to {what} on {day.isoformat()}: {detail}")


def _named(users: Iterator[tuple[str, Any]], source: str, day: date) -> Iterator[tuple[str, Any]]:
    """A user stream whose failures name the source."""
    try:
        yield from users
    except Exception as exc:  # noqa: BLE001 - any failure of a source plugin
        failure = source_failed(source, day, exc)
        failure.stream = stream_name("root", source, day)
        raise failure from None


def stream_name(kind: str, name: str, day: date) -> str:
    """What a user stream of a group is, in messages (and to find the cells reading it)."""
    if kind == "root":
        return f"root source {name!r} on {day.isoformat()}"
    return f"the result of {name} on {day.isoformat()}"


class Environment:
    """What a process needs to run cells: workspace, sources, calculation code, the cache."""

    def __init__(
        self,
        workspace: Workspace,
        plugins: Plugins,
        backend: Backend,
        static_hashes: Mapping[str, str] | None = None,
        components: Mapping[str, Mapping[str, str]] | None = None,
    ):
        self.workspace = workspace
        # this process's own static hash per target: a task planned from other code (a worker
        # deployed from another revision, or seeing other data files or environment variables)
        # is refused instead of caching wrong results; ``components`` say which part differs
        self.static_hashes = static_hashes
        self.components = components or {}
        self.plugins = plugins
        self.sources: dict[str, RootSource] = plugins.root_sources()
        self.backend = backend
        self.loader = CalculationLoader(workspace)
        self.by_label = workspace.by_label()
        self.owner = worker_id()
        # renews the leases of running cells, so a short lease_seconds is safe however long
        # a calculation runs (a dead process's cells are taken over within about one lease)
        self.heartbeat = Heartbeat(backend.renew, workspace.execution.lease_seconds / 3)
        # (target name, static hash) of calculations found changing their inputs in place
        # (btbuild/execution/isolation.py): they get their own copies in every later pass
        self.mutators: set[tuple[str, str]] = set()
        # the environment the cells' keys were hashed with (btbuild/hashing/runtime.py): a
        # calculation changing it fails the cells committed after, and it is put back
        self.environ = dict(os.environ)
        # (source, day) -> (fingerprint, value)
        self._roots: OrderedDict[tuple[str, date], tuple[str | None, Any]] = OrderedDict()
        import psutil  # (imported by processes that run cells only)

        self._process = psutil.Process()
        self._memory_limit = psutil.virtual_memory().total * workspace.execution.memory_fraction

    @classmethod
    def of(cls, context: ExecutionContext) -> Environment:
        """The environment of a process that runs cells for ``context``'s workspace."""
        components = {name: target_components(h) for name, h in context.hashes.items()}
        return cls(
            context.workspace, context.plugins, context.backend, context.static_hashes(), components
        )

    def environ_changed(self) -> list[str]:
        """Environment variables calculation code changed since this process hashed its
        targets (sorted); :meth:`restore_environ` puts them back."""
        return changed_variables(self.environ)

    def restore_environ(self) -> None:
        if os.environ != self.environ:
            os.environ.clear()
            os.environ.update(self.environ)

    def load_root(self, source: str, day: date) -> Any:
        """A date-scope source's value for ``day`` (None when it has no data)."""
        return self.load_root_stamped(source, day)[1]

    def load_root_stamped(self, source: str, day: date) -> tuple[str | None, Any]:
        """(fingerprint, value) of a date-scope source's data for ``day``; kept in a small LRU
        under the fingerprint, so a long-lived process (``btbuild worker``) never serves a
        day's data that was re-ingested since it loaded it."""
        key = (source, day)
        stamp = self.fingerprint(source, day)
        cached = self._roots.get(key)
        if cached is not None and cached[0] == stamp:
            self._roots.move_to_end(key)
            return cached
        try:  # the fingerprint of what was read, not of what was there a moment before
            stamp, value = (None, None) if stamp is None else self.sources[source].load_read(day)
        except Exception as exc:  # noqa: BLE001 - any failure of a source plugin
            raise source_failed(source, day, exc, "load its data") from None
        self._roots[key] = (stamp, value)
        self._roots.move_to_end(key)
        if len(self._roots) > 256:
            self._roots.popitem(last=False)
        return stamp, value

    def fingerprint(self, source: str, day: date) -> str | None:
        """The source's fingerprint of ``day`` as it is now (None: no data that day)."""
        root = self.sources[source]
        try:
            return root.fingerprint(day) if root.available(day) else None
        except Exception as exc:  # noqa: BLE001 - any failure of a source plugin
            raise source_failed(source, day, exc, "fingerprint its data") from None

    def roots_moved(
        self, target: Target, cell: CellTask, read: Mapping[tuple[str, date], str | None]
    ) -> list[str]:
        """The root sources whose data (over the days the cell can see) is not what the cell
        was planned with, either when it read it (``read``: the fingerprints taken as it read,
        Attempt.root_stamps) or now: re-ingested while the cell ran. Its result must not be
        committed under the planned key (it may hold either version)."""
        current: dict[tuple[str, date], str | None] = {}

        def now_of(source: str, day: date) -> str | None:
            if (source, day) not in current:
                current[(source, day)] = self.fingerprint(source, day)
            return current[(source, day)]

        def read_of(source: str, day: date) -> str | None:
            return read[(source, day)] if (source, day) in read else now_of(source, day)

        now = root_fingerprints(target, cell.day, now_of)
        seen = root_fingerprints(target, cell.day, read_of)
        planned = cell.root_fingerprints
        return sorted(s for s in now if planned.get(s) != now[s] or planned.get(s) != seen[s])

    def users(
        self, source: str, day: date, shard: int = 0, shards: int = 1
    ) -> Iterator[tuple[str, Any]]:
        return self.users_read(source, day, shard, shards)[0]

    def users_read(
        self, source: str, day: date, shard: int = 0, shards: int = 1
    ) -> tuple[Iterator[tuple[str, Any]], Callable[[], str | None]]:
        """A user-scope source's users of ``day`` (a part of them when ``shards`` > 1), and
        the call giving the fingerprint of what the stream read once it is exhausted
        (``RootSource.users_read``; None when the source cannot tell)."""
        root = self.sources[source]
        try:
            if not root.available(day):
                return iter(()), unknown_read
            users, read = root.users_read(day, shard, shards)
        except Exception as exc:  # noqa: BLE001 - any failure of a source plugin
            failure = source_failed(source, day, exc)
            failure.stream = stream_name("root", source, day)
            raise failure from None
        return _named(users, source, day), read

    def memory_high(self) -> bool:
        return bool(self._process.memory_info().rss > self._memory_limit)

    def kind_of(self, name: str) -> str:
        """The kind (per_date, per_user) of the target named ``name``."""
        return self.workspace.targets[name].kind
