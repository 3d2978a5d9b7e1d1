"""Start the Google Cloud emulators once per test process, on free ports.

Both the cloud tests and the storage contract suite need the Firestore emulator; they share
one process through :func:`firestore` / :func:`pubsub`, which start it on first use, wait
until it answers, and stop it by its process group id at exit (the session fixtures in
tests/cloud/conftest.py and tests/storage/conftest.py call these). Without ``gcloud`` (or
Java) the tests skip with the reason, unless the environment variable ``CI`` is set: CI must
run them, so there it is a failure.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

START_TIMEOUT = 90.0


@dataclass
class Emulator:
    name: str
    host: str  # "127.0.0.1:PORT"
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(
                    self.process.pid, signal.SIGTERM
                )  # gcloud, its wrapper script and the JVM
                self.process.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


_running: dict[str, Emulator] = {}
_failed: dict[str, str] = {}

_COMMANDS = {
    "firestore": ["gcloud", "emulators", "firestore", "start"],
    "pubsub": ["gcloud", "beta", "emulators", "pubsub", "start"],
}


def unavailable(reason: str) -> None:
    """Skip (locally) or fail (under CI) because an emulator cannot run."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so the cloud tests must run)")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(host: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{host}/", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def start(name: str) -> Emulator:
    """The running emulator ``name`` ("firestore" or "pubsub"), started on first use."""
    if name in _running:
        return _running[name]
    if name in _failed:
        unavailable(_failed[name])
    for tool in ("gcloud", "java"):
        if shutil.which(tool) is None:
            _failed[name] = (
                f"the {name} emulator needs {tool!r} on PATH (install the Google Cloud SDK and a JRE)"
            )
            unavailable(_failed[name])
    host = f"127.0.0.1:{free_port()}"
    log = Path(tempfile.mkstemp(prefix=f"btbuild-{name}-emulator-", suffix=".log")[1])
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*_COMMANDS[name], f"--host-port={host}"],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    emulator = Emulator(name, host, process, log)
    deadline = time.monotonic() + START_TIMEOUT
    while not _answers(host):
        if process.poll() is not None or time.monotonic() > deadline:
            emulator.stop()
            tail = log.read_text(errors="replace")[-400:].strip().replace("\n", " | ")
            _failed[name] = f"the {name} emulator did not start on {host}: {tail}"
            unavailable(_failed[name])
        time.sleep(0.2)
    _running[name] = emulator
    atexit.register(emulator.stop)
    return emulator


def firestore() -> Emulator:
    emulator = start("firestore")
    os.environ["FIRESTORE_EMULATOR_HOST"] = emulator.host
    return emulator


def pubsub() -> Emulator:
    emulator = start("pubsub")
    os.environ["PUBSUB_EMULATOR_HOST"] = emulator.host
    return emulator


def stop_all() -> None:
    for emulator in list(_running.values()):
        emulator.stop()
    _running.clear()
