"""Cloud fixtures: the emulators (once per session) and workspaces on Firestore + Pub/Sub."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cloud import emulators
from tests.execution.conftest import Workspace, make_workspace

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def cloud() -> Iterator[dict[str, str]]:
    """Both emulators, started once; their hosts are exported for this process and workers."""
    fs = emulators.firestore()
    ps = emulators.pubsub()
    yield {"FIRESTORE_EMULATOR_HOST": fs.host, "PUBSUB_EMULATOR_HOST": ps.host}
    emulators.stop_all()


class CloudWorkspace(Workspace):
    """A workspace of tests/execution whose cache is Firestore under a fresh prefix."""

    def __init__(self, root: Path, prefix: str, env: dict[str, str]):
        super().__init__(root)
        self.prefix = prefix
        self.env = env
        self.workers: list[subprocess.Popen[bytes]] = []

    def backend(self) -> object:
        from btbuild.storage import FirestoreBackend

        return FirestoreBackend(prefix=self.prefix)

    def deploy(self) -> None:
        """What an operator runs once: topics, subscriptions (and indexes, not on the emulator)."""
        code, out, err = self.cli("deploy", "--ack-deadline", "10")
        assert code == 0, err

    def start_workers(
        self,
        count: int,
        *,
        idle_exit: float = 60.0,
        extra: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> list[subprocess.Popen[bytes]]:
        env = dict(os.environ, **self.env, **(env or {}), PYTHONPATH=str(REPO))
        started = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "btbuild",
                    "--workspace",
                    str(self.root),
                    "worker",
                    "--idle-exit",
                    str(idle_exit),
                    "--ack-deadline",
                    "10",
                    *extra,
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=(self.root / f"worker{len(self.workers) + i}.log").open("wb"),
                start_new_session=True,
            )
            for i in range(count)
        ]
        self.workers.extend(started)
        return started

    def keep_workers(self, count: int, env: dict[str, str] | None = None) -> Supervisor:
        """Keep ``count`` workers running (as a Deployment would), restarting dead ones."""
        return Supervisor(self, count, env)

    def stop_workers(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                process.kill()  # by its own pid
            process.wait(timeout=10)

    def log_of(self, worker: subprocess.Popen[bytes]) -> str:
        """What one worker started here has logged so far."""
        path = self.root / f"worker{self.workers.index(worker)}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def worker_logs(self) -> str:
        return "\n".join(
            p.read_text(errors="replace")[-2000:] for p in sorted(self.root.glob("worker*.log"))
        )


class Supervisor:
    """Restarts workers that die until stopped; counts the deaths (exit codes)."""

    def __init__(self, ws: CloudWorkspace, count: int, env: dict[str, str] | None):
        self.ws = ws
        self.env = env
        self.deaths: list[int] = []
        self._stop = threading.Event()
        self._alive = ws.start_workers(count, env=env)
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.2):
            for process in list(self._alive):
                code = process.poll()
                if code is not None:
                    self.deaths.append(code)
                    self._alive.remove(process)
                    self._alive.extend(self.ws.start_workers(1, env=self.env))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


@pytest.fixture
def cloud_ws(tmp_path: Path, cloud: dict[str, str]) -> Iterator[CloudWorkspace]:
    prefix = f"test/{uuid.uuid4().hex[:12]}"
    make_workspace(
        tmp_path / "ws",
        f'\n[storage]\nbackend = "firestore"\nprefix = "{prefix}"\n',
        "lease_seconds = 4\nretry_backoff = 1\n",
    )
    ws = CloudWorkspace(tmp_path / "ws", prefix, cloud)
    ws.deploy()
    yield ws
    ws.stop_workers()
