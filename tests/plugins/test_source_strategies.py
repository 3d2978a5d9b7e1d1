from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from hypothesis import HealthCheck, Phase, find, given, settings

from btbuild.plugins import MemorySource, PluginConfig
from btbuild.plugins.jsonl import JsonlSource
from btbuild.plugins.market import MarketSettings, market_sources

MARKET = {
    s.name: s
    for s in market_sources(
        MarketSettings.from_config(
            PluginConfig(Path("."), Path("BUILD.toml"), {"market": {"users": 3}})
        )
    )
}
FAST = settings(
    max_examples=60, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
SEARCH = settings(
    max_examples=500, derandomize=True, deadline=None, database=None, phases=[Phase.generate]
)


def check_portfolio(record):
    assert (
        set(record) == {"cash", "positions"}
        and isinstance(record["cash"], float)
        and record["cash"] >= 0
    )
    symbols = [p["symbol"] for p in record["positions"]]
    assert len(symbols) == len(set(symbols))
    for p in record["positions"]:
        assert set(p) == {"symbol", "quantity", "avg_cost", "opened"}
        assert p["quantity"] >= 0 and p["avg_cost"] > 0
        date.fromisoformat(p["opened"])


def check_trades(trades):
    assert isinstance(trades, list)
    for t in trades:
        assert t["side"] in ("buy", "sell") and t["quantity"] > 0 and t["price"] > 0
        assert (t["realized_pnl"] is None) == (t["holding_days"] is None)
        assert t["side"] == "sell" or t["realized_pnl"] is None


def check_prices(prices):
    assert prices
    for bar in prices.values():
        assert (
            0
            < bar["low"]
            <= min(bar["open"], bar["close"])
            <= max(bar["open"], bar["close"])
            <= bar["high"]
        )
        assert isinstance(bar["volume"], int)


@FAST
@given(MARKET["portfolio"].strategy())
def test_portfolio_strategy_gives_valid_records(record):
    check_portfolio(record)
    assert {p["symbol"] for p in record["positions"]} <= set(MARKET["prices"].market.symbols[:8])
    json.dumps(record, allow_nan=False)


@FAST
@given(
    MARKET["trades"].strategy(),
    MARKET["prices"].strategy(),
    MARKET["benchmarks"].strategy(),
    MARKET["insights"].strategy(),
)
def test_date_and_trade_strategies_give_valid_values(trades, prices, benchmarks, insights):
    check_trades(trades)
    check_prices(prices)
    assert set(prices) == set(MARKET["prices"].market.symbols[:8])
    assert {t["symbol"] for t in trades} <= set(prices)
    assert all(v["level"] > 0 for v in benchmarks.values()) and "market" in benchmarks
    assert all(-1 <= v["sentiment"] <= 1 for v in insights.values())
    json.dumps([trades, prices, benchmarks, insights], allow_nan=False)


def test_the_generated_market_passes_the_same_checks():
    day = date(2024, 3, 4)
    check_prices(MARKET["prices"].load(day))
    for _, record in MARKET["portfolio"].users(day):
        check_portfolio(record)
    for _, trades in MARKET["trades"].users(day):
        check_trades(trades)


def test_strategies_reach_the_edge_cases():
    portfolio = MARKET["portfolio"].strategy()
    assert find(portfolio, lambda r: r["positions"] == [], settings=SEARCH)["positions"] == []
    assert (
        len(find(portfolio, lambda r: len(r["positions"]) == 1, settings=SEARCH)["positions"]) == 1
    )
    assert find(portfolio, lambda r: len(r["positions"]) >= 3, settings=SEARCH)
    assert find(portfolio, lambda r: r["cash"] == 0.0, settings=SEARCH)["cash"] == 0.0
    assert find(
        portfolio, lambda r: any(p["quantity"] == 0 for p in r["positions"]), settings=SEARCH
    )
    assert find(
        portfolio, lambda r: any(p["avg_cost"] < 0.01 for p in r["positions"]), settings=SEARCH
    )
    trades = MARKET["trades"].strategy()
    assert find(trades, lambda ts: any(t["realized_pnl"] == 0.0 for t in ts), settings=SEARCH)
    assert find(trades, lambda ts: any((t["realized_pnl"] or 0) < 0 for t in ts), settings=SEARCH)
    assert find(
        MARKET["prices"].strategy(),
        lambda p: any(b["close"] < 0.01 for b in p.values()),
        settings=SEARCH,
    )


@FAST
@given(
    JsonlSource("prices", "date", Path("unused")).strategy(),
    JsonlSource("portfolio", "user", Path("unused")).strategy(),
    MemorySource("m", "user").strategy(),
)
def test_json_source_strategies_give_json(date_value, user_record, memory_record):
    assert isinstance(date_value, dict)
    json.dumps([date_value, user_record, memory_record], allow_nan=False)
