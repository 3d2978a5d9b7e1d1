"""Lease owners: a dead, zombie or reused-pid holder is told from a live one (issue 12)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import psutil

from btbuild.execution.liveness import is_dead_local_owner, owner_id, parse_owner


def test_owner_records_host_pid_and_start_time():
    owner = parse_owner(owner_id())
    assert owner is not None
    assert (owner.host, owner.pid) == (socket.gethostname(), os.getpid())
    assert owner.start is not None and abs(owner.start - psutil.Process().create_time()) < 0.02
    assert not is_dead_local_owner(owner_id())


def test_a_live_holder_is_alive_and_a_gone_one_dead():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        owner = owner_id(child.pid)
        assert not is_dead_local_owner(owner)
        assert not is_dead_local_owner(f"{socket.gethostname()}:{child.pid}")  # old format
    finally:
        child.kill()
        child.wait()
    assert is_dead_local_owner(owner)


def test_a_zombie_holder_is_dead():
    """kill -9 of a builder whose parent has not reaped it yet (a container whose PID 1 never
    reaps): the pid still exists, but nothing will ever commit or release its lease."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    owner = owner_id(child.pid)
    os.kill(child.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    try:
        assert psutil.pid_exists(child.pid)
        assert is_dead_local_owner(owner)
        assert is_dead_local_owner(f"{socket.gethostname()}:{child.pid}")
    finally:
        child.wait()


def test_a_reused_pid_is_dead_and_other_hosts_are_not_judged():
    started = psutil.Process().create_time()
    reused = f"{started - 100:.2f}@{socket.gethostname()}:{os.getpid()}"  # same pid, older start
    assert is_dead_local_owner(reused)
    parent = os.getppid()
    assert is_dead_local_owner(
        f"{psutil.Process(parent).create_time() + 5:.2f}@{socket.gethostname()}:{parent}"
    )
    assert not is_dead_local_owner(f"{started:.2f}@another-host:{os.getpid()}")
    assert not is_dead_local_owner("w1") and parse_owner("not@an:owner") is None
