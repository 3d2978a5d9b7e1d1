"""Hand-computed cases for //signals and //profiling."""

from __future__ import annotations

import datetime

import pytest
from calc_harness import quote, run, trade

FRIDAY = datetime.date(2024, 1, 12)


def holding(symbol, quantity):
    return {"symbol": symbol, "quantity": quantity, "avg_cost": 1.0, "opened": "2024-01-02"}


PRICES = {"A": quote(10.0), "B": quote(10.0, "energy"), "C": quote(10.0), "Z": quote(0.0)}


def portfolio(*positions):
    return {"portfolio": {"cash": 0.0, "positions": list(positions)}}


def test_rsi_signals_need_enough_observations():
    stats = {
        "A": {"rsi": 80.0, "observations": 10},
        "B": {"rsi": 20.0, "observations": 10},
        "C": {"rsi": 95.0, "observations": 2},
        "D": {"rsi": 50.0, "observations": 5},
    }
    assert run("rsi_signals", deps={"symbol_stats": stats}) == {
        "overbought": ["A"],
        "oversold": ["B"],
        "judged": 3,
    }
    assert run("rsi_signals", deps={"symbol_stats": {}}) == {
        "overbought": [],
        "oversold": [],
        "judged": 0,
    }


def test_sentiment_with_and_without_insights():
    insights = {
        "A": {"sentiment": 0.5, "rating": "buy"},
        "C": {"sentiment": -0.1, "rating": "hold"},
        "B": {"sentiment": -1.0, "rating": "sell"},
    }
    result = run("sentiment", roots={"prices": PRICES, "insights": insights})
    assert result["available"] is True
    assert result["by_sector"] == {"tech": pytest.approx(0.2), "energy": -1.0}
    assert result["ratings"] == {"buy": 1, "hold": 1, "sell": 1}
    missing = run("sentiment", roots={"prices": PRICES})  # optional root absent today
    assert missing == {
        "available": False,
        "symbols": {},
        "by_sector": {},
        "ratings": {"buy": 0, "hold": 0, "sell": 0},
    }


def test_user_signals():
    signals = {"overbought": ["A"], "oversold": ["B"]}
    mood = {"available": True, "symbols": {"A": 0.4, "C": -0.2}}
    users = {
        "u": portfolio(holding("A", 2), holding("B", 1), holding("C", 1)),
        "e": portfolio(),
        "n": {},
    }
    result = run(
        "user_signals",
        roots={"prices": PRICES},
        users=users,
        deps={"rsi_signals": signals, "sentiment": mood},
    )
    assert result["u"] == {
        "overbought_weight": 0.5,
        "oversold_weight": 0.25,
        "sentiment": pytest.approx(0.2),
    }
    assert result["e"] == {"overbought_weight": 0.0, "oversold_weight": 0.0, "sentiment": None}
    assert "n" not in result
    offline = run(
        "user_signals",
        roots={"prices": PRICES},
        users=users,
        deps={"rsi_signals": signals, "sentiment": {"available": False, "symbols": {}}},
    )
    assert offline["u"]["sentiment"] is None


def test_market_outlook_is_seeded_by_date():
    roots = {
        ("benchmarks", ago): {"market": {"level": 100.0 * (1.01 if ago % 2 else 1.0)}}
        for ago in range(0, 20)
    }
    first = run("market_outlook", FRIDAY, roots=roots)
    assert first == run("market_outlook", FRIDAY, roots=roots)
    assert first["p05"] <= first["p50"] <= first["p95"]
    assert 0.0 <= first["drop_probability"] <= 1.0 and 0.0 <= first["drop_simulated"] <= 1.0
    assert first != run("market_outlook", FRIDAY + datetime.timedelta(days=7), roots=roots)
    flat = run("market_outlook", FRIDAY, roots={"benchmarks": {"market": {"level": 100.0}}})
    assert flat == {
        "drift": 0.0,
        "volatility": 0.0,
        "p05": 0.0,
        "p50": 0.0,
        "p95": 0.0,
        "drop_probability": 0.0,
        "drop_simulated": 0.0,
    }


def test_trade_behaviour_reads_the_week_skipping_missing_days():
    records = {
        ("trades", 3): [trade("buy", 10, 10)],
        ("trades", 1): [trade("sell", 10, 9, -10.0, 20)],
        "trades": [trade("buy", 30, 10), trade("sell", 1, 12, 4.0, 5)],
    }
    result = run(
        "trade_behaviour", FRIDAY, users={"u": records, "quiet": {"trades": []}, "gone": {}}
    )
    # buys 100 and 300 (mean 200); the buy after the loss is 300: one escalation in one loss
    assert result == {
        "u": {
            "trades": 4,
            "losses": 1,
            "escalations": 1,
            "revenge": 1.0,
            "disposition_skew": pytest.approx(15 / 25),
        }
    }


GEOMETRY_STATS = {
    "A": {"vol": 0.01, "mean": 0.001},
    "B": {"vol": 0.02, "mean": 0.002},
    "C": {"vol": 0.02, "mean": 0.0},
}


def test_risk_geometry_frontier_weight():
    users = {
        "u": portfolio(holding("A", 1), holding("B", 1), holding("C", 2)),
        "one": portfolio(holding("C", 1)),
        "empty": portfolio(),
        "unpriced": portfolio(holding("Z", 1)),
    }
    result = run(
        "risk_geometry",
        roots={"prices": PRICES},
        users=users,
        deps={"symbol_stats": GEOMETRY_STATS},
    )
    u = result["u"]
    assert u["points"] == 3 and u["hull_vertices"] == 3 and u["frontier"] == ["A", "B"]
    assert u["efficiency"] == 0.5  # A and B are a quarter each; C is dominated by B
    assert u["area"] == pytest.approx(0.5 * (0.01 * 252**0.5) * (0.002 * 252), abs=1e-8)
    assert result["one"] == {
        "points": 1,
        "hull_vertices": 1,
        "area": 0.0,
        "frontier": ["C"],
        "efficiency": 1.0,
    }
    assert (
        result["empty"]
        == result["unpriced"]
        == {"points": 0, "hull_vertices": 0, "area": 0.0, "frontier": [], "efficiency": 0.0}
    )


def test_attribution_splits_return_into_market_and_alpha():
    users = {"u": portfolio(holding("A", 1), holding("B", 1)), "e": portfolio(), "x": {}}
    deps = {
        "daily_returns": {"A": 0.02, "B": 0.0},
        "sector_returns": {"market": 0.005},
        "portfolio_beta": {"u": {"beta": 1.2}, "e": {"beta": 0.0}},
    }
    result = run("attribution", roots={"prices": PRICES}, users=users, deps=deps)
    assert result == {"u": {"return": 0.01, "market": 0.006, "alpha": 0.004, "skill_share": 0.4}}
    first_day = {**deps, "daily_returns": {}, "sector_returns": {}}
    assert run("attribution", roots={"prices": PRICES}, users=users, deps=first_day) == {}


def test_smart_money_combines_components():
    deps = {
        "risk_geometry": {"u": {"efficiency": 0.8}, "quiet": {"efficiency": 1.0}, "nogeo": None},
        "attribution": {
            "u": {"skill_share": 0.5},
            "quiet": {"skill_share": 0.0},
            "nogeo": {"skill_share": 1.0},
        },
        "trade_behaviour": {"u": {"revenge": 0.25, "disposition_skew": 0.4}},
    }
    result = run("smart_money", users={"u": {}, "quiet": {}, "nogeo": {}}, deps=deps)
    assert result["u"] == {
        "score": 64.5,
        "components": {"skill": 0.5, "efficiency": 0.8, "discipline": 0.75, "patience": 0.6},
    }
    assert result["quiet"]["score"] == pytest.approx(
        100 * (0.25 + 0.2 + 0.2)
    )  # no trades: disciplined and patient
    assert "nogeo" not in result
