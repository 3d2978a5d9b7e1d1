"""Hostile or unlucky calculations and sources, through real ``btbuild`` processes: each is
its cell's failure with one clear line, never the build's exit code, stdout or a traceback,
and the cache stays intact (``btbuild fsck`` finds nothing)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.execution.conftest import Workspace

V, T, S, L = "//pricing:value", "//pricing:total", "//pricing:sign", "//pricing:price_level"


def run(ws: Workspace, *argv: str) -> tuple[int, str, str]:
    done = subprocess.run(
        [sys.executable, "-m", "btbuild", "--workspace", str(ws.root), *argv],
        capture_output=True,
        text=True,
        timeout=300,
    )
    return done.returncode, done.stdout, done.stderr


def build_json(
    ws: Workspace, *extra: str, date: str = "2024-01-02"
) -> tuple[int, dict[str, Any], str]:
    code, out, err = run(ws, "build", "//...", "--date", date, "--format", "json", *extra)
    assert "Traceback" not in err, err
    return code, json.loads(out), err  # stdout is the report and nothing else


def cells(report: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(c["label"], c["date"]): c for c in report["cells"]}


def assert_intact(ws: Workspace) -> None:
    code, out, err = run(ws, "fsck", "--date", "2024-01-05")
    assert code == 0 and "no damage found" in out, out + err


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_sys_exit_and_keyboard_interrupt_in_calc_code_fail_their_cell(
    ws: Workspace, jobs: str
) -> None:
    ws.edit(
        "calculations/pricing/totals.py",
        "    values = ctx.dep",
        "    raise SystemExit(3)\n    values = ctx.dep",
    )
    # (a KeyboardInterrupt raised by calc code: test_keyboard_interrupt_* below)
    code, report, err = build_json(ws, "--jobs", jobs)
    assert code == 1, err  # a failed cell, not the calculation's exit code 3 nor 130
    found = cells(report)
    total = found[(T, "2024-01-01")]
    assert (
        total["status"] == "failed"
        and "SystemExit: sys.exit(3) called by the calculation" in total["detail"]
    )
    assert found[(L, "2024-01-02")]["status"] == "ran"
    assert_intact(ws)


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_print_in_calc_code_goes_to_stderr_and_json_stays_json(ws: Workspace, jobs: str) -> None:
    ws.edit(
        "calculations/pricing/levels.py",
        "    return sorted",
        "    print('LEVEL-OUTPUT', ctx.date)\n    return sorted",
    )
    ws.edit(
        "calculations/pricing/calcs.py",
        "    prices = ctx.root",
        "    print('user', ctx.user.id)\n    prices = ctx.root",
    )
    code, report, err = build_json(ws, "--jobs", jobs)
    assert code == 0, err
    assert report["summary"]["ran"] == 8
    assert "LEVEL-OUTPUT 2024-01-02" in err and "user u030" in err


def test_os_exit_in_a_jobs_worker_fails_that_cell_only(ws: Workspace) -> None:
    ws.edit(
        "calculations/pricing/levels.py",
        "    return sorted",
        "    import multiprocessing, os\n"
        "    if ctx.date.day == 2 and multiprocessing.parent_process() is not None:\n"
        "        os._exit(7)  # only in a child: a --jobs worker (or the sim judge's process)\n"
        "    return sorted",
    )
    code, report, err = build_json(ws, "--jobs", "2", date="2024-01-03")
    assert code == 1, err
    found = cells(report)
    dead = found[(L, "2024-01-02")]
    assert dead["status"] == "failed" and "worker process running it died" in dead["detail"]
    assert (
        found[(L, "2024-01-01")]["status"] in ("ran", "skipped")  # skipped: committed by a
        and found[(L, "2024-01-03")]["status"] in ("ran", "skipped")  # task that was retried
    )
    assert all(
        found[(label, day)]["status"] in ("ran", "skipped")
        for label in (V, T, S)
        for day in ("2024-01-01", "2024-01-02", "2024-01-03")
    )
    assert_intact(ws)
    ws.edit("calculations/pricing/levels.py", "        os._exit(7)", "        pass")
    code, report, err = build_json(ws, "--jobs", "2", date="2024-01-03")
    assert code == 0, err


def test_a_thread_left_running_by_calc_code_never_holds_a_jobs_build(ws: Workspace) -> None:
    """Calculation code that starts a (non-daemon) thread that never ends, in a ``--jobs``
    worker: the worker's interpreter would wait for it at exit, and the builder for the
    worker. Workers end without that wait (``local.quick_exit``) once their outcomes are in."""
    ws.edit(
        "calculations/pricing/levels.py",
        "    return sorted",
        "    import threading\n"
        "    threading.Thread(target=threading.Event().wait, name='forever').start()\n"
        "    return sorted",
    )
    done = subprocess.run(
        [sys.executable, "-m", "btbuild", "--workspace", str(ws.root), "build", "//..."]
        + ["--date", "2024-01-02", "--jobs", "2", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert {c["status"] for c in json.loads(done.stdout)["cells"]} <= {"ran", "skipped"}


FLAKY_PLUGIN = """\
from datetime import date

from btbuild import MemorySource, hookimpl


class Broken(MemorySource):
    def available(self, day: date) -> bool:
        return True

    def fingerprint(self, day: date) -> str:
        return "v1"

    def load(self, day):
        raise RuntimeError("feed is down")

    def users(self, day):
        yield "u2", {"n": 2}
        yield "u1", {"n": 1}


@hookimpl
def btbuild_root_sources():
    return [Broken("ticks", "date"), Broken("accounts", "user")]
"""


def test_a_failing_root_source_and_a_stream_out_of_order_name_the_source(ws: Workspace) -> None:
    ws.write("plugins/flaky.py", FLAKY_PLUGIN)
    ws.edit(
        "BUILD.toml",
        'plugins = ["btbuild.plugins.jsonl"]',
        'plugins = ["btbuild.plugins.jsonl", "plugins.flaky"]',
    )
    ws.write(
        "calculations/feed/BUILD.toml",
        '[calculation.tick_count]\nentry = "feed:ticks"\nkind = "per_date"\nroots = ["ticks"]\n\n'
        '[calculation.per_account]\nentry = "feed:accounts"\nroots = ["accounts"]\n',
    )
    ws.write(
        "calculations/feed/feed.py",
        "def ticks(ctx):\n    return len(ctx.root('ticks'))\n\n\ndef accounts(ctx):\n    return ctx.user['accounts']\n",
    )
    code, report, err = build_json(ws, date="2024-01-01")
    assert code == 1, err
    found = cells(report)
    ticks = found[("//feed:tick_count", "2024-01-01")]["detail"]
    assert (
        "root source 'ticks' failed to load its data on 2024-01-01: RuntimeError: feed is down"
        in ticks
    )
    assert "circuit breaker" not in ticks
    order = found[("//feed:per_account", "2024-01-01")]["detail"]
    assert (
        "root source 'accounts' on 2024-01-01 is not in ascending user order: 'u1' came after 'u2'"
        in order
    )
    assert "Error" not in order.split("(attempt")[0]  # no internal class name
    # the cells of the same group that do not read the broken stream still ran
    assert (
        found[(V, "2024-01-01")]["status"] == "ran" and found[(S, "2024-01-01")]["status"] == "ran"
    )
    assert_intact(ws)


def test_unknown_checks_key_missing_entry_and_bad_values_are_workspace_errors(
    ws: Workspace,
) -> None:
    ws.build(date="2024-01-01")
    cases = [
        (
            'roots = ["prices"]\n',
            'roots = ["prices"]\nchecks = { null_densty = 0.9 }\n',
            "null_densty",
        ),
        ('entry = "levels:level"', 'entry = "levels:no_such_function"', "no_such_function"),
        (
            'roots = ["prices"]\n',
            'roots = ["prices"]\nchecks = { null_density = "lots" }\n',
            "null_density",
        ),
    ]
    for old, new, named in cases:
        ws.edit("calculations/pricing/BUILD.toml", old, new)
        code, out, err = run(ws, "build", "//...", "--date", "2024-01-02", "--format", "json")
        assert code == 2, (named, err)
        assert err.count("\n") == 1 and named in err and "calculations/pricing/BUILD.toml" in err, (
            err
        )
        assert out == ""
        ws.edit("calculations/pricing/BUILD.toml", new, old)
    with ws.backend() as backend:  # nothing was attempted: no failed or dead-lettered cell
        assert {
            r.status
            for r in backend.get_cells(
                ["value", "total", "sign", "price_level"], ["2024-01-02"]
            ).values()
        } == set()
    assert_intact(ws)


def test_date_before_start_date_and_unreadable_build_toml(ws: Workspace, tmp_path: Path) -> None:
    code, _out, err = run(ws, "build", "//...", "--date", "2023-12-01")
    assert code == 2
    assert (
        err.strip()
        == "btbuild: error: --date 2023-12-01 is before [workspace] start_date 2024-01-01"
    ), err
    assert "--from" not in err
    code, _out, err = run(ws, "build", "//...", "--date", "2024-01-01", "--from", "2024-01-03")
    assert code == 2 and "--from 2024-01-03 is after --date 2024-01-01" in err
    build_file = ws.root / "BUILD.toml"
    text = build_file.read_bytes()
    build_file.write_bytes(b"\xff\xfe" + text)
    code, _out, err = run(ws, "status", "//...", "--date", "2024-01-01")
    assert code == 2 and err.strip().endswith("BUILD.toml: cannot read: not UTF-8 text"), err
    build_file.write_bytes(text)
    build_file.chmod(0)
    try:
        if build_file.stat().st_mode & 0o400 or _can_read(build_file):
            pytest.skip("running as a user who can read any file")
        code, _out, err = run(ws, "status", "//...", "--date", "2024-01-01")
    finally:
        build_file.chmod(0o644)
    assert (
        code == 2 and "BUILD.toml" in err and "cannot read" in err and "no workspace" not in err
    ), err


def _can_read(path: Path) -> bool:
    try:
        path.read_bytes()
    except OSError:
        return False
    return True


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """``folder`` cannot be written by btbuild: permissions, or (as root, whom permissions do
    not stop) a read-only bind mount; skips where neither is possible."""
    if os.geteuid() != 0:
        modes = {path: path.stat().st_mode for path in [folder, *folder.iterdir()]}
        for path in modes:
            path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield
        finally:
            for path, mode in modes.items():
                path.chmod(mode)
        return
    bind = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True)
    if bind.returncode != 0:
        pytest.skip("cannot make a read-only folder here (root without mount)")
    try:
        remount = ["mount", "-o", "remount,ro,bind", str(folder)]
        if subprocess.run(remount, capture_output=True).returncode != 0:
            pytest.skip("cannot remount read-only here")
        yield
    finally:
        subprocess.run(["umount", str(folder)], capture_output=True)


def test_a_read_only_cache_still_serves_status_explain_query_and_dry_run(ws: Workspace) -> None:
    ws.build(date="2024-01-02")
    (ws.root / "data/prices/2024-01-03.jsonl").write_text(
        '{"key": "AAA", "value": {"close": 1.0}}\n'
    )
    cache = ws.root / ".btbuild"
    before = (cache / "cache.db").read_bytes()
    with read_only(cache):
        for argv in (
            ("status", "//...", "--date", "2024-01-03"),
            ("explain", "//pricing:value", "--date", "2024-01-02"),
            ("query", "deps(//pricing:sign)"),
            ("build", "//...", "--date", "2024-01-03", "--dry-run"),
            ("fsck", "--date", "2024-01-03"),
        ):
            code, out, err = run(ws, *argv)
            assert code == 0, (argv, err)
            assert "read-only" not in err and "Traceback" not in err, (argv, err)
        code, out, err = run(ws, "build", "//...", "--date", "2024-01-03")
        assert code == 1
        lines = [line for line in err.splitlines() if line.startswith("btbuild: error")]
        assert len(lines) == 1 and "the cache is read-only here" in lines[0], err
        assert "move it away" not in err and "fresh" not in err
    assert (cache / "cache.db").read_bytes() == before
    assert_intact(ws)


def test_keyboard_interrupt_raised_in_sim_worlds_is_not_the_builds_exit_code(ws: Workspace) -> None:
    ws.edit(
        "calculations/pricing/calcs.py",
        "    prices = ctx.root",
        "    if ctx.user.id == 'u007':\n        raise KeyboardInterrupt\n    prices = ctx.root",
    )
    # the real build: one user of 30 fails (within max_failure_rate), so the build passes;
    # the sim judge then simulates the code (after the build, in its own process), where
    # the KeyboardInterrupt is an output like any exception: neither stops the build (130)
    code, report, err = build_json(ws)
    assert code == 0, err
    value = cells(report)[(V, "2024-01-02")]
    assert value["status"] == "ran"
    assert "user u007: KeyboardInterrupt raised by the calculation" in value["detail"]


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_calculation_changing_a_date_scope_root_in_place_changes_no_other_cell(
    ws: Workspace, jobs: str
) -> None:
    """Date-scope root data is loaded once per process and cached; a calculation that changes
    it in place (here it overwrites every close and sorts nothing back) must not change what
    another cell reads: price_level equals a build without the vandal."""
    ws.build(date="2024-01-02")
    with ws.backend() as backend:
        clean = {d: backend.read_result("price_level", d) for d in ("2024-01-01", "2024-01-02")}
    ws.write(
        "calculations/aa/BUILD.toml",
        '[calculation.vandal]\nentry = "v:vandal"\nkind = "per_date"\nroots = ["prices"]\n',
    )
    ws.write(
        "calculations/aa/v.py",
        "def vandal(ctx):\n"
        "    prices = ctx.root('prices')\n"
        "    for quote in prices.values():\n"
        "        quote['close'] = -1.0\n"
        "    return len(prices)\n",
    )
    code, _report, err = build_json(ws, "--force", "--jobs", jobs)
    assert code == 0, err
    with ws.backend() as backend:
        after = {d: backend.read_result("price_level", d) for d in ("2024-01-01", "2024-01-02")}
    assert after == clean
