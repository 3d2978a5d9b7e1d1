"""Fabricated values kept across processes (btbuild/sim/world_store.py) change nothing but time:
the same SimHashes cold, warm and from a damaged file, in fresh processes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from btbuild.sim import world_store

CORPUS = Path(__file__).parent / "corpus"
SCRIPT = """
import json, sys
from pathlib import Path
from btbuild.session import Session
from btbuild.sim import fabricator, world_store
from btbuild.sim.runner import SimRunner

draws = []
real_draw = fabricator.draw
fabricator.draw = lambda strategy, seed: draws.append(seed) or real_draw(strategy, seed)
session = Session(Path(sys.argv[1]))
runner = SimRunner(session.workspace, session.plugins.root_sources(), time_limit=None)
hashes = {name: runner.simulate(name).combined for name in sorted(session.workspace.targets)}
world_store.save_all()
print(json.dumps({"hashes": hashes, "draws": len(draws)}))
"""


def simulate(root: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(root)], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def test_kept_worlds_give_the_same_sim_hashes_without_drawing(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    shutil.copytree(CORPUS, root, ignore=shutil.ignore_patterns(".btbuild", "__pycache__"))
    cold = simulate(root)
    files = list((root / world_store.STORE_FOLDER).glob("*.pickle"))
    assert len(files) == 1 and cold["draws"] > 100
    warm = simulate(root)
    assert warm["hashes"] == cold["hashes"] and warm["draws"] == 0

    raw = bytearray(files[0].read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # damaged: ignored, drawn again, written again
    files[0].write_bytes(bytes(raw))
    damaged = simulate(root)
    assert damaged["hashes"] == cold["hashes"] and damaged["draws"] == cold["draws"]
    assert simulate(root)["draws"] == 0


def test_the_key_covers_the_version_and_the_seed() -> None:
    keys = {
        world_store.store_key("2+hypothesis-6+abc", 1),
        world_store.store_key("2+hypothesis-6+abd", 1),
        world_store.store_key("2+hypothesis-6+abc", 2),
    }
    assert len(keys) == 3
