"""Builders sharing one *Firestore* cache (the production setup) with no coordinator between
them: two and three local builders started together, and builders killed with SIGKILL
mid-way. Each round ends with every cell equal to a clean from-scratch build (SQLite) of the
same code, and nothing left to run. The SQLite twin of this test is tests/execution/
test_stress.py; this one is smaller (a few rounds) since every Firestore call is a round trip.

The stress workspace has a fused per_user target (``scaled``): with ``--force`` or on a cold
cache it runs in ``value``'s user stream, so fused streams meet a second builder here too.
"""

from __future__ import annotations

import random
import time
import uuid
from pathlib import Path

import pytest

from tests.execution.stress_harness import (
    LAST,
    assert_nothing_to_run,
    in_process,
    kill,
    reference,
    set_variant,
    start_build,
    stress_workspace,
    wait_dead,
)

pytestmark = [pytest.mark.emulator, pytest.mark.slow, pytest.mark.timeout(900)]


def firestore_results(prefix: str, keys: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
    from btbuild.storage import FirestoreBackend

    found = {}
    with FirestoreBackend(prefix=prefix) as backend:
        for target, day in sorted(keys):
            record = backend.get_cell(target, day)
            if record is not None and record.status == "committed":
                found[(target, day)] = record.result_hash
            assert record is None or backend.has_result(target, day) == (
                record.status == "committed"
            ), (target, day, record.status)
    return found


def assert_current(root: Path, prefix: str, expected: dict[tuple[str, str], str], what: str):
    found = firestore_results(prefix, set(expected))
    wrong = sorted(key for key in expected if found.get(key) != expected[key])
    assert not wrong, f"{what}: cells differ from a clean build: {wrong}"
    assert_nothing_to_run(root, what)


ROUNDS: list[tuple[str, list[list[str]], str | None]] = [
    (
        "overlapping patterns, three builders",
        [
            ["//pricing:total"],
            ["//hist:running", "//hist:book"],
            ["//hist:streak", "//...", "--jobs", "2"],
        ],
        "toggle",
    ),
    (
        "a cosmetic edit adopted next to a forced (fused) build",
        [["//..."], ["//...", "--force"]],
        "cosmetic",
    ),
    ("kill -9 of a forced (fused) build", [["//...", "--force"]], "kill"),
    ("kill -9 of a --jobs 2 build after a change", [["//...", "--jobs", "2"]], "toggle-kill"),
]


def test_builders_sharing_a_firestore_cache_end_current(tmp_path: Path, cloud) -> None:
    expected = {variant: reference(tmp_path, variant) for variant in (0, 1)}
    prefix = f"stress/{uuid.uuid4().hex[:12]}"
    storage = f'\n[storage]\nbackend = "firestore"\nprefix = "{prefix}"\n'
    root = stress_workspace(tmp_path / "ws", 0, storage)
    assert in_process(root, "build", "//...", "--date", LAST)[0] == 0
    assert_current(root, prefix, expected[0], "first build")
    rng = random.Random(20261202)
    variant, form, landed = 0, 0, 0
    for name, builders, change in ROUNDS:
        if change and change.startswith("toggle"):
            variant = 1 - variant
        elif change == "cosmetic":
            form = 1 - form
        set_variant(root, variant, form)
        started = time.monotonic()
        running = [start_build(root, *argv) for argv in builders]
        if change and change.endswith("kill"):
            time.sleep(rng.uniform(1.5, 4.0))  # interpreter start and planning take ~1 s
            still = running[0].poll() is None
            if still:
                assert wait_dead(kill(running[0], group=True)) == []
                landed += 1
            running[0].communicate()
            code, _out, err = in_process(root, "build", "//...", "--date", LAST)
            assert code == 0, f"{name}: the rebuild failed: {err}"
        else:
            for build in running:
                _out, err = build.communicate(timeout=600)
                assert build.returncode == 0, f"{name}: {err}"
                assert "Traceback" not in err and "internal error" not in err, err
        assert_current(
            root, prefix, expected[variant], f"{name} ({time.monotonic() - started:.0f} s)"
        )
    assert landed >= 1, "every kill came after its build had finished"
