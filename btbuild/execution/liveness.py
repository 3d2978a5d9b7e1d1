"""Who holds a lease, and whether that process is still alive.

A lease owner is ``<start>@<host>:<pid>``: the host name, the process id and the process's
start time (epoch seconds, two decimals, as the kernel reports it). On the holder's own host
that tells a live holder from a dead one without waiting for the lease to expire: the pid is
gone, the process is a zombie (killed and not yet reaped, e.g. in a container whose PID 1
never reaps), or the pid was reused by a process that started at another time. Owners from
other hosts (Pub/Sub workers) are never judged here: their leases run until they expire.
Owners written by older versions (``<host>:<pid>``) are judged by pid and zombie state only.
"""

from __future__ import annotations

import importlib
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

# /proc reports start times in clock ticks (1/100 s): two decimals are exact, the slack
# only absorbs float formatting
_START_SLACK = 0.015


@dataclass(frozen=True)
class Owner:
    host: str
    pid: int
    start: float | None  # None for an owner written without a start time


def process_start(pid: int | None = None) -> float:
    """The start time of a process (this one by default), rounded as owners record it."""
    import psutil  # (imported when a process is judged: a no-op build judges none)

    created: float = psutil.Process(pid).create_time()  # (psutil ships no types)
    return round(created, 2)


def owner_id(pid: int | None = None) -> str:
    """The lease owner string of a process (this one by default)."""
    pid = os.getpid() if pid is None else pid
    return f"{process_start(pid):.2f}@{socket.gethostname()}:{pid}"


def parse_owner(owner: str) -> Owner | None:
    """The parts of an owner string; None when it names no local-style process."""
    start: float | None = None
    rest = owner
    if "@" in owner:
        stamp, _, rest = owner.partition("@")
        try:
            start = float(stamp)
        except ValueError:
            return None
    host, _, pid = rest.rpartition(":")
    if not host or not pid.isdigit():
        return None
    return Owner(host, int(pid), start)


def is_dead_local_owner(owner: str) -> bool:
    """True for an owner on this host whose process is gone, a zombie, or another process
    that reuses its pid. False when alive, on another host, or not an owner we can judge."""
    parsed = parse_owner(owner)
    if parsed is None or parsed.host != socket.gethostname():
        return False
    if parsed.pid == os.getpid():
        return parsed.start is not None and abs(process_start() - parsed.start) > _START_SLACK
    import psutil

    try:
        process = psutil.Process(parsed.pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return True
        started = round(process.create_time(), 2)
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:  # no permission to look: it exists, so treat it as alive
        return False
    return parsed.start is not None and abs(started - parsed.start) > _START_SLACK


def exit_with_parent(parent_pid: int, interval: float = 0.2) -> threading.Thread:
    """Start a daemon thread that ends this process at once when ``parent_pid`` is no longer
    its parent (the builder was killed: its worker processes must not outlive it, holding
    leases and the cache open). Returns the thread."""

    def watch() -> None:
        while True:
            time.sleep(interval)
            if os.getppid() != parent_pid:
                os._exit(70)  # EX_SOFTWARE; nobody reads it: the builder is gone

    thread = threading.Thread(target=watch, name="btbuild-parent-watch", daemon=True)
    thread.start()
    return thread


def start_worker(builder_pid: int, initializer: str, *args: Any) -> None:
    """A pool worker's initializer: watch the builder first (before the heavy imports, so a
    builder killed while its workers start still takes them along), then run
    ``initializer`` ("module:function") with ``args``."""
    exit_with_parent(builder_pid)
    module, _, function = initializer.partition(":")
    getattr(importlib.import_module(module), function)(*args)
