"""Hand-computed cases for //aggregates and //alerts."""

from __future__ import annotations

import datetime

import pytest
from calc_harness import run


def test_market_summary():
    deps = {
        "daily_returns": {"A": 0.02, "B": -0.01, "C": 0.0, "D": 0.03},
        "sector_returns": {"tech": 0.01, "energy": -0.02, "health": 0.01, "market": 0.004},
    }
    assert run("market_summary", deps=deps) == {
        "advancers": 2,
        "decliners": 1,
        "unchanged": 1,
        "breadth": 0.25,
        "mean_return": 0.01,
        "market_return": 0.004,
        "best_sector": "health",
        "worst_sector": "energy",  # ties: by name
    }
    first_day = run("market_summary", deps={"daily_returns": {}, "sector_returns": {}})
    assert (
        first_day["breadth"] == 0.0
        and first_day["best_sector"] is None
        and first_day["market_return"] is None
    )


def test_leaderboard_ranks_ties_by_user():
    scores = {f"u{i}": {"score": float(s)} for i, s in enumerate([50, 70, 70, 10, 90])}
    board = run("leaderboard", deps={"smart_money": scores})
    assert board["top"][:3] == [
        {"user": "u4", "score": 90.0},
        {"user": "u1", "score": 70.0},
        {"user": "u2", "score": 70.0},
    ]
    assert board["users"] == 5 and board["mean"] == 58.0 and board["median"] == 70.0
    assert board["p90"] == pytest.approx(82.0)
    assert run("leaderboard", deps={"smart_money": {}}) == {
        "users": 0,
        "mean": 0.0,
        "median": 0.0,
        "p90": 0.0,
        "top": [],
    }


def test_risk_distribution():
    risk = {"a": {"score": 10.0}, "b": {"score": 50.0}, "c": {"score": 90.0}}
    var = {"a": {"var_95": 1.5}, "c": {"var_95": 2.25}}
    result = run(
        "risk_distribution",
        datetime.date(2024, 1, 12),
        deps={"portfolio_risk": risk, "value_at_risk": var},
    )
    assert result == {
        "users": 3,
        "p10": 18.0,
        "p50": 50.0,
        "p90": 82.0,
        "high_risk": 1,
        "total_var_95": 3.75,
    }


def test_cumulative_pnl_carries_the_running_total():
    today = {
        "a": {"realized": 10.5, "wins": 1, "losses": 0},
        "b": {"realized": -3.0, "wins": 0, "losses": 2},
    }
    first = run("cumulative_pnl", deps={"realized_pnl": today})
    assert first == {"days": 1, "today": 7.5, "total": 7.5, "wins": 1, "losses": 2}
    second = run("cumulative_pnl", deps={"realized_pnl": {}}, previous=first)
    assert second == {"days": 2, "today": 0.0, "total": 7.5, "wins": 1, "losses": 2}
    third = run("cumulative_pnl", deps={"realized_pnl": today}, previous=second)
    assert third["total"] == 15.0 and third["days"] == 3 and third["losses"] == 4


def test_monthly_sector_performance_on_a_weekend_first():
    # 2024-06-01 is a Saturday: May's last close is Friday the 31st (1 day ago); the close
    # before May is Tuesday April 30th (32 days ago).
    roots = {
        ("benchmarks", 1): {
            "tech": {"level": 110.0},
            "energy": {"level": 95.0},
            "market": {"level": 103.0},
        },
        ("benchmarks", 32): {
            "tech": {"level": 100.0},
            "energy": {"level": 100.0},
            "market": {"level": 100.0},
        },
        ("benchmarks", 33): {
            "tech": {"level": 1.0},
            "energy": {"level": 1.0},
            "market": {"level": 1.0},
        },
    }
    result = run("monthly_sector_performance", datetime.date(2024, 6, 1), roots=roots)
    assert result == {
        "month": "2024-05",
        "available": True,
        "sectors": {
            "tech": pytest.approx(0.1),
            "energy": pytest.approx(-0.05),
            "market": pytest.approx(0.03),
        },
        "best": "tech",
        "worst": "energy",
    }


def test_monthly_sector_performance_without_history():
    result = run(
        "monthly_sector_performance",
        datetime.date(2024, 1, 1),
        roots={"benchmarks": {"tech": {"level": 1.0}}},
    )
    assert result == {
        "month": "2023-12",
        "available": False,
        "sectors": {},
        "best": None,
        "worst": None,
    }


def test_risk_increase_compares_with_the_previous_day():
    risk = {"up": {"score": 55.0}, "flat": {"score": 40.0}, "new": {"score": 20.0}}
    previous = {"up": {"score": 40.0}, "flat": {"score": 35.0}}
    result = run(
        "risk_increase",
        users={"up": {}, "flat": {}, "new": {}, "gone": {}},
        deps={"portfolio_risk": risk},
        previous=previous,
    )
    assert result["up"] == {"score": 55.0, "previous": 40.0, "change": 15.0, "alert": True}
    assert result["flat"] == {"score": 40.0, "previous": 35.0, "change": 5.0, "alert": False}
    assert result["new"] == {"score": 20.0, "previous": None, "change": 0.0, "alert": False}
    assert "gone" not in result


def test_barrier_alert_only_for_users_at_risk():
    risk = {
        "hi": {"max_probability": 0.62, "riskiest": "A"},
        "lo": {"max_probability": 0.1, "riskiest": "B"},
        "edge": {"max_probability": 0.5, "riskiest": "C"},
    }
    result = run(
        "barrier_alert",
        users={"hi": {}, "lo": {}, "edge": {}, "none": {}},
        deps={"barrier_risk": risk},
    )
    assert result == {
        "hi": {"symbol": "A", "probability": 0.62},
        "edge": {"symbol": "C", "probability": 0.5},
    }


def summary(advancers, decliners, unchanged=0, breadth=0.0):
    return {
        "advancers": advancers,
        "decliners": decliners,
        "unchanged": unchanged,
        "breadth": breadth,
    }


def test_market_alerts():
    mood = {"available": True, "symbols": {"A": 0.5, "B": 0.3}}
    board = {"users": 10, "median": 25.0}
    result = run(
        "market_alerts",
        deps={"market_summary": summary(1, 9, 0, -0.8), "sentiment": mood, "leaderboard": board},
    )
    assert [a["kind"] for a in result["alerts"]] == [
        "broad_selloff",
        "sentiment_divergence",
        "weak_smart_money",
    ]
    assert result["alerts"][0]["value"] == 0.9 and result["count"] == 3
    calm = run(
        "market_alerts",
        deps={
            "market_summary": summary(5, 5),
            "sentiment": {"available": False, "symbols": {}},
            "leaderboard": {"users": 0, "median": 0.0},
        },
    )
    assert calm == {"alerts": [], "count": 0}
    rally = run(
        "market_alerts",
        deps={
            "market_summary": summary(8, 1, 1, 0.7),
            "sentiment": mood,
            "leaderboard": board | {"median": 60.0},
        },
    )
    assert rally["alerts"] == [{"kind": "broad_rally", "value": 0.8}]
