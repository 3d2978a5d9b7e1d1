"""Determinism: the same inputs give byte-identical results and hashes in any process, with
any PYTHONHASHSEED and with any --jobs (DESIGN.md section 6)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.execution.conftest import Workspace

NAMES = ("value", "total", "sign", "price_level")
DAYS = ("2024-01-01", "2024-01-02", "2024-01-03")


def build_in_subprocess(root: Path, seed: str, jobs: str) -> dict[str, object]:
    env = dict(os.environ, PYTHONHASHSEED=seed)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "btbuild",
            "--workspace",
            str(root),
            "build",
            "//...",
            "--date",
            "2024-01-03",
            "--jobs",
            jobs,
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def fingerprint(root: Path) -> dict[tuple[str, str], tuple[str, bytes]]:
    """Result hash and the exact stored bytes of every cell."""
    backend = Workspace(root).backend()
    out = {}
    for name in NAMES:
        for day in DAYS:
            record = backend.get_cell(name, day)
            value = backend.read_result(name, day)
            out[(name, day)] = (record.result_hash, json.dumps(value, sort_keys=True).encode())
    backend.close()
    return out


def test_results_are_identical_across_processes_hash_seeds_and_jobs(ws, tmp_path):
    roots = []
    for index, (seed, jobs) in enumerate((("0", "1"), ("12345", "1"), ("random", "2"))):
        root = tmp_path / f"copy{index}"
        shutil.copytree(ws.root, root)
        report = build_in_subprocess(root, seed, jobs)
        assert report["summary"]["ran"] == 12
        roots.append(root)
    first = fingerprint(roots[0])
    assert all(fingerprint(root) == first for root in roots[1:])
    hashes = [
        json.loads(
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "btbuild",
                    "--workspace",
                    str(root),
                    "hash",
                    "//...",
                    "--format",
                    "json",
                ],
                capture_output=True,
                text=True,
                env=dict(os.environ, PYTHONHASHSEED=str(i)),
                check=True,
            ).stdout
        )
        for i, root in enumerate(roots)
    ]
    assert hashes[0] == hashes[1] == hashes[2]
