"""Crash consistency and races between processes, on the SQLite backend.

Writers run in processes forked by a forkserver (fast to start, and unlike a plain fork they
do not inherit this process's open SQLite connection, which SQLite forbids); each opens its own
backend. SIGKILL at a random moment must leave the old complete result or the new complete one,
never a mix.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import random
import signal
import time
from pathlib import Path

import pytest

from btbuild.storage import RunRecord, SqliteBackend

HAS_FORKSERVER = "forkserver" in multiprocessing.get_all_start_methods()
pytestmark = pytest.mark.skipif(not HAS_FORKSERVER, reason="needs the forkserver start method")
CTX = multiprocessing.get_context("forkserver") if HAS_FORKSERVER else None
if CTX is not None:
    CTX.set_forkserver_preload(["btbuild.storage", __name__])
TARGET, DATE = "risk", "2024-03-01"
USERS = 300
FLUSH_EVERY = 3  # many small flushes: many shards, many moments to die in


def result_for(tag: str) -> dict[str, object]:
    return {f"u{i:03d}": {"tag": tag, "i": i, "pad": "x" * 40} for i in range(USERS)}


FLUSHES = (USERS + FLUSH_EVERY - 1) // FLUSH_EVERY


def write_result(
    backend: SqliteBackend, tag: str, now: float | None = None, progress: object = None
) -> None:
    lease = backend.acquire(TARGET, DATE, f"writer-{tag}", 60, now=now)
    assert lease is not None
    writer = backend.open_writer(lease, "per_user")
    for index, (user_id, value) in enumerate(result_for(tag).items()):
        writer.add({user_id: value})
        if index % FLUSH_EVERY == FLUSH_EVERY - 1:
            writer.flush()
            if progress is not None:
                progress.value += 1  # type: ignore[attr-defined]
    writer.commit(composite_hash=tag, now=now)


def _child_writer(path: str, tag: str, progress: object) -> None:
    with SqliteBackend(path) as backend:
        write_result(backend, tag, progress=progress)
    os._exit(0)


def test_sigkill_leaves_old_or_new_result_and_rerun_completes(tmp_path: Path) -> None:
    assert CTX is not None
    path = str(tmp_path / "cache.db")
    rng = random.Random(20240301)
    with SqliteBackend(path) as backend:
        write_result(backend, "t0")
        current = "t0"
        outcomes = {"old": 0, "new": 0, "mid_write": 0}
        for trial in range(1, 33):
            tag = f"t{trial}"
            progress = CTX.Value("i", 0, lock=False)
            # Kill after a random number of flushes: 0 = before or during the first shards,
            # FLUSHES = during the commit, more = after the child finished.
            kill_after = rng.randint(0, FLUSHES + 2)
            child = CTX.Process(target=_child_writer, args=(path, tag, progress))
            child.start()
            give_up = time.perf_counter() + 20
            while (
                progress.value < kill_after and child.is_alive() and time.perf_counter() < give_up
            ):
                seen = backend.read_result(TARGET, DATE)  # read while the child writes
                assert seen in (result_for(current), result_for(tag)), (
                    f"trial {trial}: half result visible"
                )
            if kill_after > FLUSHES:
                child.join(20)
            if child.is_alive():  # it may exit between the check and the kill
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
            child.join(10)
            assert child.exitcode in (0, -signal.SIGKILL), (
                f"trial {trial}: writer failed ({child.exitcode})"
            )
            seen = backend.read_result(TARGET, DATE)
            if seen == result_for(tag):
                outcomes["new"] += 1
            else:
                assert seen == result_for(current), (
                    f"trial {trial}: neither old nor new after SIGKILL"
                )
                outcomes["old"] += 1
            record = backend.get_cell(TARGET, DATE)
            assert record is not None and record.composite_hash in (current, tag)
            if record.status == "running" and record.lease_generation is not None:
                leftovers = backend._read_shards(TARGET, DATE, record.lease_generation, range(1))
                outcomes["mid_write"] += leftovers != [None]
            # The rerun takes over the zombie lease (if any) and finishes the work.
            write_result(backend, tag, now=time.time() + 3600)
            assert backend.read_result(TARGET, DATE) == result_for(tag)
            assert backend.collect_garbage() == 0, (
                "the rerun's commit left older generations behind"
            )
            current = tag
        assert outcomes["mid_write"] >= 3, outcomes  # the kills really landed mid-write
        assert outcomes["new"] >= 1, outcomes
        assert outcomes["old"] + outcomes["new"] == 32


def _racer(path: str, worker: str, cells: list[tuple[str, str]], go: object) -> None:
    go.wait(10)  # type: ignore[attr-defined]
    with SqliteBackend(path) as backend:
        for target, date in cells:
            lease = backend.acquire(target, date, worker, 60)
            if lease is None:
                continue  # the other worker is running it
            if lease.previous is not None and lease.previous.status == "committed":
                backend.release(lease)  # double-checked after taking the lease: already done
                continue
            started = time.time()
            writer = backend.open_writer(lease, "per_user")
            for index in range(20):  # slow enough for the two workers to overlap
                writer.add({f"u{index:02d}": {"by": worker}})  # ascending user ids
                writer.flush()
            writer.commit(composite_hash=worker)
            backend.append_run(
                RunRecord(
                    run_id=f"{worker}-{target}-{date}",
                    target=target,
                    date=date,
                    status="committed",
                    worker_id=worker,
                    started=started,
                    duration=time.time() - started,
                )
            )
    os._exit(0)


def test_two_processes_racing_commit_each_cell_once(tmp_path: Path) -> None:
    assert CTX is not None
    path = str(tmp_path / "cache.db")
    SqliteBackend(path).close()  # create the schema before the race
    cells = [(f"t{t}", f"2024-01-{d:02d}") for t in range(5) for d in range(1, 9)]
    go = CTX.Event()
    racers = [CTX.Process(target=_racer, args=(path, f"w{i}", cells, go)) for i in range(2)]
    for racer in racers:
        racer.start()
    go.set()
    for racer in racers:
        racer.join(60)
        assert racer.exitcode == 0, f"racer failed ({racer.exitcode})"
    with SqliteBackend(path) as backend:
        runs = backend.runs(limit=1000)
        assert sorted((run.target, run.date) for run in runs) == sorted(cells)  # each exactly once
        by_cell = {(run.target, run.date): run.worker_id for run in runs}
        found = backend.get_cells({t for t, _ in cells}, {d for _, d in cells})
        assert set(found) == set(cells)
        for cell, record in found.items():
            assert record.status == "committed" and record.attempts == 1
            assert record.composite_hash == by_cell[cell]
            assert backend.read_result(*cell) == {
                f"u{i:02d}": {"by": by_cell[cell]} for i in range(20)
            }
