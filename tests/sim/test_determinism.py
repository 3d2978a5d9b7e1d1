"""SimHashes are identical in fresh processes with different PYTHONHASHSEED values.

The runs have no time limit: whether a call times out depends on the machine's load, which is
why a limited simulation is never evidence (tests/sim/test_limits.py); what is tested here is
that everything else (fabrication, canonical outputs, hashing) depends on nothing outside.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from btbuild.sim.canonical import canonical, same
from btbuild.sim.fabricator import Fabricator

CORPUS = Path(__file__).parent / "corpus"
SCRIPT = """
import json, sys
from pathlib import Path
from btbuild.session import Session
from btbuild.sim.runner import SimRunner
session = Session(Path(sys.argv[1]))
runner = SimRunner(session.workspace, session.plugins.root_sources(), time_limit=None)
results = {name: runner.simulate(name) for name in sorted(session.workspace.targets)}
assert not any(result.limited for result in results.values())
print(json.dumps({name: result.combined for name, result in results.items()}))
"""


def sim_hashes(seed: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONHASHSEED=seed)
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(CORPUS)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parent,
    )
    return json.loads(done.stdout)


def test_same_sim_hashes_under_two_hash_seeds() -> None:
    first, second = sim_hashes("1"), sim_hashes("4242")
    assert first == second
    assert len(set(first.values())) == len(first)  # every target has its own behaviour


def test_worlds_cover_the_edge_cases() -> None:
    from btbuild.plugins.market import MarketSettings, market_sources

    sources = {s.name: s for s in market_sources(MarketSettings())}
    fab = Fabricator(sources)
    worlds = fab.worlds()
    assert len(worlds) >= 64
    portfolios = [fab.user_root(w, "portfolio", u) for w in worlds for u in w.users]
    assert any(p["positions"] == [] for p in portfolios)
    assert any(len(p["positions"]) == 1 for p in portfolios)
    assert any(p["cash"] == 0 for p in portfolios)
    assert any(any(line["quantity"] < 0 for line in p["positions"]) for p in portfolios)
    prices = [fab.date_root(w, "prices") for w in worlds]
    assert any(all(bar["close"] == 0 for bar in day.values()) for day in prices)
    assert any(w.users == () for w in worlds)
    assert any(fab.date_root(w, "insights", optional=True) is None for w in worlds)
    assert any(fab.user_root(w, "trades", u, 1) is None for w in worlds for u in w.users)


def test_canonical_outputs() -> None:
    assert canonical(0.1 + 0.2) != canonical(0.3)  # exact, as stored: the last bit counts
    assert same(-0.0, 0.0) and not same(1e-17, 0.0)
    assert canonical({"b": 1, "a": [1.0, 2]}) == {"a": [1.0, 2], "b": 1}
    # as stored: an int is not a float, nor a bool an int; a tuple is refused by the build
    assert not same(1, 1.0) and not same(0, 0.0) and not same(True, 1) and same(2, 2)
    assert not same({"n": 3}, {"n": 3.0}) and not same(2**60, float(2**60))
    assert canonical((1, 2)) == {"$invalid": "tuple"}
    assert canonical(float("nan")) == {"$float": "nan"}
    assert canonical(1.0000001) != canonical(1.0)
    assert canonical({1, 2}) == {"$invalid": "set"}
