from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

from btbuild.errors import PluginError
from btbuild.plugins import PluginConfig
from btbuild.plugins.market import MarketSettings, market_sources

REPO = Path(__file__).resolve().parents[2]
MONDAY = date(2024, 3, 4)


def sources(**settings):
    config = PluginConfig(
        root=Path("."), build_file=Path("BUILD.toml"), settings={"market": settings}
    )
    return {s.name: s for s in market_sources(MarketSettings.from_config(config))}


SAMPLE = """
import hashlib, json, sys
from datetime import date
from pathlib import Path
from btbuild.plugins import PluginConfig
from btbuild.plugins.market import MarketSettings, market_sources
config = PluginConfig(root=Path("."), build_file=Path("BUILD.toml"), settings={"market": {"users": 300, "seed": 7}})
src = {s.name: s for s in market_sources(MarketSettings.from_config(config))}
out = {}
for day in (date(2024, 1, 2), date(2024, 2, 14), date(2024, 6, 28)):
    d = day.isoformat()
    out[d] = {"prices": src["prices"].load(day), "benchmarks": src["benchmarks"].load(day),
              "portfolio": [r for r in src["portfolio"].users(day)][::37],
              "trades": [r for r in src["trades"].users(day)][::37],
              "fingerprints": {n: s.fingerprint(day) for n, s in sorted(src.items()) if s.available(day)}}
print(hashlib.sha256(json.dumps(out, sort_keys=True).encode()).hexdigest())
"""


def test_identical_bytes_in_every_process_and_hash_seed():
    digests = set()
    for seed in ("1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(REPO)}
        done = subprocess.run(
            [sys.executable, "-c", SAMPLE], env=env, capture_output=True, text=True, check=True
        )
        digests.add(done.stdout.strip())
    assert len(digests) == 1
    namespace: dict[str, object] = {}
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        exec(compile(SAMPLE, "<sample>", "exec"), namespace)
    assert buffer.getvalue().strip() in digests


def test_weekends_and_days_before_start_are_unavailable():
    src = sources(users=5, start="2024-01-03")
    saturday, sunday = date(2024, 3, 2), date(2024, 3, 3)
    for source in src.values():
        assert not source.available(saturday) and not source.available(sunday)
        assert not source.available(date(2024, 1, 2))
    assert src["prices"].available(date(2024, 1, 3)) and src["portfolio"].available(MONDAY)
    with pytest.raises(PluginError, match="'prices' has no data for 2024-03-02"):
        src["prices"].load(saturday)
    with pytest.raises(PluginError, match="'portfolio' has no data for 2024-03-03"):
        next(src["portfolio"].users(sunday))


def test_insights_missing_on_every_fifth_ordinal_and_when_off():
    src = sources(users=1)
    trading = [date(2024, 1, 1) + timedelta(days=i) for i in range(60)]
    trading = [d for d in trading if d.weekday() < 5]
    for day in trading:
        assert src["insights"].available(day) == (day.toordinal() % 5 != 0)
    assert any(not src["insights"].available(d) for d in trading)
    off = sources(users=1, insights=False)
    assert not any(off["insights"].available(d) for d in trading)
    assert off["prices"].fingerprint(MONDAY) == src["prices"].fingerprint(MONDAY)


def test_revision_changes_only_that_dates_fingerprints_not_its_data():
    plain = sources(users=20)
    revised = sources(users=20, revisions={"2024-03-05": 2})
    for offset in range(10):
        day = MONDAY + timedelta(days=offset)
        for name, source in plain.items():
            if not source.available(day):
                continue
            changed = source.fingerprint(day) != revised[name].fingerprint(day)
            assert changed == (day == date(2024, 3, 5)), (name, day)
    day = date(2024, 3, 5)
    assert plain["prices"].load(day) == revised["prices"].load(day)
    assert list(plain["portfolio"].users(day)) == list(revised["portfolio"].users(day))


def test_fingerprints_follow_the_settings_each_source_depends_on():
    base, more_users, other_seed = sources(users=10), sources(users=11), sources(users=10, seed=1)
    assert base["prices"].fingerprint(MONDAY) == more_users["prices"].fingerprint(MONDAY)
    assert base["portfolio"].fingerprint(MONDAY) != more_users["portfolio"].fingerprint(MONDAY)
    assert base["prices"].fingerprint(MONDAY) != other_seed["prices"].fingerprint(MONDAY)
    assert base["prices"].fingerprint(MONDAY) != base["prices"].fingerprint(
        MONDAY + timedelta(days=1)
    )
    assert base["prices"].load(MONDAY) != other_seed["prices"].load(MONDAY)


def test_users_ascending_and_complete():
    src = sources(users=1200)
    ids = [user for user, _ in src["portfolio"].users(MONDAY)]
    assert ids == sorted(ids) and len(ids) == len(set(ids)) == 1200
    assert ids[0] == "u000001" and ids[-1] == "u001200"
    assert [u for u, _ in src["trades"].users(MONDAY)] == ids


def test_shapes_match_market_data_doc():
    src = sources(users=400)
    prices = src["prices"].load(MONDAY)
    assert len(prices) == 300
    for bar in prices.values():
        assert bar["close"] > 0 and bar["open"] > 0 and bar["low"] > 0
        assert bar["high"] >= max(bar["open"], bar["close"]) and bar["low"] <= min(
            bar["open"], bar["close"]
        )
        assert isinstance(bar["volume"], int) and bar["sector"] in {
            "tech",
            "energy",
            "finance",
            "health",
            "consumer",
            "industrial",
        }
    assert min(bar["close"] for bar in prices.values()) < 1.0  # a few penny stocks
    bench = src["benchmarks"].load(MONDAY)
    assert set(bench) == {"tech", "energy", "finance", "health", "consumer", "industrial", "market"}
    assert all(v["level"] > 0 for v in bench.values())
    insights = src["insights"].load(MONDAY)
    assert all(
        -1 <= v["sentiment"] <= 1 and v["rating"] in {"buy", "hold", "sell"}
        for v in insights.values()
    )
    for _, record in src["portfolio"].users(MONDAY):
        assert set(record) == {"cash", "positions"} and record["cash"] >= 0
        symbols = [p["symbol"] for p in record["positions"]]
        assert len(symbols) == len(set(symbols)) and set(symbols) <= set(prices)
        for p in record["positions"]:
            assert p["quantity"] >= 0 and p["avg_cost"] > 0
            date.fromisoformat(p["opened"])
    json.dumps(list(src["trades"].users(MONDAY)), allow_nan=False)


def test_edge_cases_are_present():
    records = [r for _, r in sources(users=2000)["portfolio"].users(MONDAY)]
    sizes = [len(r["positions"]) for r in records]
    assert sizes.count(0) >= 20 and sizes.count(1) >= 20 and max(sizes) >= 10
    assert sum(r["cash"] == 0.0 for r in records) >= 20
    assert any(p["quantity"] == 0.0 for r in records for p in r["positions"])


def test_portfolios_evolve_slowly_and_trades_match_the_change():
    src = sources(users=300)
    days = [
        MONDAY + timedelta(days=i) for i in range(30) if (MONDAY + timedelta(days=i)).weekday() < 5
    ]
    kept = total = 0
    any_trades = False
    for before, after in zip(days, days[1:], strict=False):
        old = dict(src["portfolio"].users(before))
        new = dict(src["portfolio"].users(after))
        for user, (_, trades) in zip(new, src["trades"].users(after), strict=True):
            held_before = {p["symbol"]: p for p in old[user]["positions"]}
            held_after = {p["symbol"]: p for p in new[user]["positions"]}
            total += len(held_before)
            kept += sum(
                1
                for s, p in held_before.items()
                if s in held_after and held_after[s]["opened"] == p["opened"]
            )
            for trade in trades:
                any_trades = True
                if trade["side"] == "sell":
                    assert held_before[trade["symbol"]]["quantity"] == trade["quantity"]
                    assert trade["realized_pnl"] is not None and trade["holding_days"] >= 0
                else:
                    assert held_after[trade["symbol"]]["opened"] == after.isoformat()
                    assert trade["realized_pnl"] is None
    assert any_trades
    assert kept / total > 0.9


def test_prices_follow_a_continuous_path():
    src = sources(users=1)
    a, b = src["prices"].load(date(2024, 5, 6)), src["prices"].load(date(2024, 5, 7))
    moves = sorted(abs(b[s]["close"] / a[s]["close"] - 1) for s in a)
    assert moves[len(moves) // 2] < 0.05  # daily moves, not fresh random prices


@pytest.mark.parametrize("shards", [2, 3])
def test_users_in_shard_are_the_shard_filter_of_users(shards):
    from btbuild.plugins import MemorySource
    from btbuild.plugins.sources import user_shard

    market = sources(users=60)
    for name in ("portfolio", "trades"):
        everyone = list(market[name].users(MONDAY))
        parts = [
            list(market[name].users_in_shard(MONDAY, shard, shards)) for shard in range(shards)
        ]
        for shard, part in enumerate(parts):
            assert part == [(uid, rec) for uid, rec in everyone if user_shard(uid, shards) == shard]
        assert sorted(uid for part in parts for uid, _ in part) == [uid for uid, _ in everyone]
    # the default implementation (any source) filters users()
    memory = MemorySource("portfolio", "user", {MONDAY: {f"u{i}": {"i": i} for i in range(20)}})
    assert sum(len(list(memory.users_in_shard(MONDAY, s, shards))) for s in range(shards)) == 20
