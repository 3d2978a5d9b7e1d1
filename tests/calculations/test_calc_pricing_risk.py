"""Hand-computed cases for //pricing and //risk."""

from __future__ import annotations

import datetime
import math

import pytest
from calc_harness import SPECS, DeclarationError, FakeContext, quote, run


def holding(symbol, quantity, avg_cost=1.0):
    return {"symbol": symbol, "quantity": quantity, "avg_cost": avg_cost, "opened": "2024-01-02"}


MONDAY = datetime.date(2024, 1, 8)


def test_daily_returns_reach_back_over_the_weekend():
    roots = {
        "prices": {"A": quote(110.0), "B": quote(50.0), "NEW": quote(5.0)},
        ("prices", 3): {"A": quote(100.0), "B": quote(0.0)},
    }
    result = run("daily_returns", MONDAY, roots=roots)
    assert result == {
        "A": pytest.approx(0.1),
        "B": 0.0,
    }  # zero previous close: no return; NEW unseen


def test_daily_returns_empty_on_first_day():
    assert run("daily_returns", MONDAY, roots={"prices": {"A": quote(1.0)}}) == {}


def test_sector_returns():
    roots = {
        "benchmarks": {"tech": {"level": 99.0}, "market": {"level": 202.0}},
        ("benchmarks", 1): {"tech": {"level": 100.0}, "market": {"level": 200.0}},
    }
    assert run("sector_returns", roots=roots) == {
        "tech": pytest.approx(-0.01),
        "market": pytest.approx(0.01),
    }
    assert run("sector_returns", roots={"benchmarks": {"tech": {"level": 1.0}}}) == {}


def test_symbol_stats_over_a_history_with_gaps():
    roots = {
        ("prices", 4): {"A": quote(100.0)},
        ("prices", 3): {"A": quote(120.0)},
        ("prices", 1): {"A": quote(90.0)},
        "prices": {"A": quote(99.0), "Z": quote(0.0, "energy")},
    }
    stats = run("symbol_stats", roots=roots)
    a = stats["A"]
    returns = [0.2, -0.25, 0.1]
    assert a["observations"] == 4 and a["sector"] == "tech"
    assert a["mean"] == pytest.approx(sum(returns) / 3, abs=1e-8)
    assert a["drawdown"] == pytest.approx(-0.25)
    assert a["rsi"] == pytest.approx(100 * 29 / 59, abs=1e-4)  # gains 20 + 9, losses 30
    assert stats["Z"] == {
        "sector": "energy",
        "close": 0.0,
        "mean": 0.0,
        "vol": 0.0,
        "drawdown": 0.0,
        "rsi": 50.0,
        "observations": 0,
    }


def test_symbol_betas_pair_days_with_both_quotes():
    roots = {
        ("prices", 2): {"A": quote(100.0)},
        ("benchmarks", 2): {"tech": {"level": 100.0}},
        ("prices", 1): {"A": quote(102.0)},
        ("benchmarks", 1): {"tech": {"level": 101.0}},
        "prices": {"A": quote(97.92), "B": quote(10.0, "energy")},
        "benchmarks": {"tech": {"level": 98.98}, "market": {"level": 1.0}},
    }
    betas = run("symbol_betas", roots=roots)
    assert betas["A"]["beta"] == pytest.approx(2.0)  # +2%/-4% against +1%/-2%
    assert betas["A"]["alpha"] == pytest.approx(0.0, abs=1e-8)
    assert betas["A"]["observations"] == 2
    assert betas["B"] == {"sector": "energy", "beta": 0.0, "alpha": 0.0, "observations": 0}


def test_portfolio_value_edge_cases():
    prices = {"A": quote(10.0), "Z": quote(0.0)}
    users = {
        "u1": {
            "portfolio": {
                "cash": 100.0,
                "positions": [holding("A", 3, 8.0), holding("Z", 2, 5.0), holding("A", 0, 9.0)],
            }
        },
        "u2": {"portfolio": {"cash": 50.0, "positions": []}},
        "u3": {},  # no record today
    }
    result = run("portfolio_value", roots={"prices": prices}, users=users)
    assert result["u1"] == {
        "cash": 100.0,
        "market_value": 30.0,
        "cost_basis": 24.0,
        "unrealized_pnl": 6.0,
        "total": 130.0,
        "positions": 2,
        "unpriced": 1,
    }
    assert result["u2"]["market_value"] == 0.0 and result["u2"]["total"] == 50.0
    assert "u3" not in result


def test_realized_pnl():
    trades = [
        {
            "symbol": "A",
            "side": "sell",
            "quantity": 1,
            "price": 1,
            "realized_pnl": 12.5,
            "holding_days": 3,
        },
        {
            "symbol": "A",
            "side": "sell",
            "quantity": 1,
            "price": 1,
            "realized_pnl": -2.5,
            "holding_days": 9,
        },
        {
            "symbol": "B",
            "side": "buy",
            "quantity": 1,
            "price": 1,
            "realized_pnl": None,
            "holding_days": None,
        },
    ]
    result = run("realized_pnl", users={"u1": {"trades": trades}, "u2": {"trades": []}, "u3": {}})
    assert result == {"u1": {"trades": 3, "closed": 2, "realized": 10.0, "wins": 1, "losses": 1}}


STATS = {"A": {"vol": 0.02, "mean": 0.0}, "B": {"vol": 0.01, "mean": 0.0}}


def risk_inputs(positions, cash=0.0):
    portfolio = {"cash": cash, "positions": positions}
    prices = {"A": quote(10.0), "B": quote(10.0), "Z": quote(0.0)}
    value = run("portfolio_value", roots={"prices": prices}, users={"u": {"portfolio": portfolio}})
    return {"prices": prices}, {"u": {"portfolio": portfolio}}, value


def test_portfolio_risk_two_positions():
    roots, users, value = risk_inputs([holding("A", 3), holding("B", 1)], cash=40.0)
    risk = run(
        "portfolio_risk",
        roots=roots,
        users=users,
        deps={"symbol_stats": STATS, "portfolio_value": value},
    )["u"]
    vol = math.sqrt((0.75 * 0.02) ** 2 + (0.25 * 0.01) ** 2)
    assert risk["volatility"] == pytest.approx(vol, abs=1e-8)
    assert risk["concentration"] == pytest.approx(0.625) and risk["largest_weight"] == 0.75
    assert risk["invested"] == pytest.approx(0.5)
    expected = 100 * (0.5 * vol * math.sqrt(252) / 0.6 + 0.3 * 0.625 + 0.2 * 0.5)
    assert risk["score"] == pytest.approx(expected, abs=0.01)


def test_portfolio_risk_empty_one_position_and_zero_price():
    roots, users, value = risk_inputs([], cash=10.0)
    empty = run(
        "portfolio_risk",
        roots=roots,
        users=users,
        deps={"symbol_stats": STATS, "portfolio_value": value},
    )
    assert empty["u"] == {
        "volatility": 0.0,
        "concentration": 0.0,
        "largest_weight": 0.0,
        "invested": 0.0,
        "score": 0.0,
    }
    roots, users, value = risk_inputs([holding("A", 1)])
    one = run(
        "portfolio_risk",
        roots=roots,
        users=users,
        deps={"symbol_stats": STATS, "portfolio_value": value},
    )["u"]
    assert one["concentration"] == 1.0 and one["invested"] == 1.0
    assert one["score"] == pytest.approx(
        100 * (0.5 * 0.02 * math.sqrt(252) / 0.6 + 0.3 + 0.2), abs=0.01
    )
    roots, users, value = risk_inputs([holding("Z", 5)])
    zero = run(
        "portfolio_risk",
        roots=roots,
        users=users,
        deps={"symbol_stats": STATS, "portfolio_value": value},
    )["u"]
    assert zero["score"] == 0.0  # a holding without a price carries no measurable risk
    assert (
        run(
            "portfolio_risk",
            roots=roots,
            users={"v": {}},
            deps={"symbol_stats": STATS, "portfolio_value": {}},
        )
        == {}
    )


def test_portfolio_beta_weights_symbol_betas():
    roots, users, _ = risk_inputs([holding("A", 3), holding("B", 1), holding("Z", 1)])
    betas = {"A": {"beta": 1.2, "alpha": 0.001}, "B": {"beta": 0.4, "alpha": -0.002}}
    result = run("portfolio_beta", roots=roots, users=users, deps={"symbol_betas": betas})["u"]
    assert result == {"beta": pytest.approx(1.0), "alpha": pytest.approx(0.00025), "covered": 1.0}
    roots, users, _ = risk_inputs([])
    assert run("portfolio_beta", roots=roots, users=users, deps={"symbol_betas": betas})["u"] == {
        "beta": 0.0,
        "alpha": 0.0,
        "covered": 0.0,
    }


def test_barrier_risk_uses_closed_form_and_memoizes_per_cell():
    from layers.gbm import barrier_hit_probability

    roots, users, _ = risk_inputs([holding("A", 3), holding("B", 1)])
    users = {**users, "w": users["u"]}
    result = run("barrier_risk", roots=roots, users=users, deps={"symbol_stats": STATS})
    pa = barrier_hit_probability(1.0, 0.85, 0.0, 0.02, 21)
    pb = barrier_hit_probability(1.0, 0.85, 0.0, 0.01, 21)
    assert (
        result["u"]
        == result["w"]
        == {
            "max_probability": pytest.approx(pa, abs=1e-6),
            "weighted_probability": pytest.approx(0.75 * pa + 0.25 * pb, abs=1e-6),
            "riskiest": "A",
        }
    )
    roots, users, _ = risk_inputs([holding("Z", 1)])
    assert run("barrier_risk", roots=roots, users=users, deps={"symbol_stats": STATS})["u"] == {
        "max_probability": 0.0,
        "weighted_probability": 0.0,
        "riskiest": None,
    }


def test_barrier_risk_short_position_uses_an_upper_stop():
    from layers.gbm import barrier_hit_probability

    roots, users, _ = risk_inputs([holding("A", -2)])
    result = run(
        "barrier_risk",
        roots=roots,
        users=users,
        deps={"symbol_stats": {"A": {"vol": 0.02, "mean": 0.001}}},
    )
    assert result["u"]["max_probability"] == pytest.approx(
        barrier_hit_probability(1.0, 1 / 0.85, 0.001, 0.02, 21), abs=1e-6
    )


def test_value_at_risk():
    risk = {"u": {"volatility": 0.02}, "v": {"volatility": 0.02}}
    value = {
        "u": {"market_value": 1000.0, "total": 2000.0},
        "v": {"market_value": 0.0, "total": 0.0},
    }
    result = run(
        "value_at_risk",
        users={"u": {}, "v": {}, "w": {}},
        deps={"portfolio_risk": risk, "portfolio_value": value},
    )
    assert result["u"] == {"var_95": 32.9, "fraction": pytest.approx(0.016449, abs=1e-6)}
    assert result["v"] == {"var_95": 0.0, "fraction": 0.0}
    assert "w" not in result


def test_fake_context_enforces_declarations():
    ctx = FakeContext(SPECS["daily_returns"], MONDAY)
    with pytest.raises(DeclarationError, match="beyond its lookback"):
        ctx.root("prices", days_ago=5)
    with pytest.raises(DeclarationError, match="does not declare"):
        ctx.root("benchmarks")
    with pytest.raises(DeclarationError, match="does not declare"):
        ctx.dep("symbol_stats")
    with pytest.raises(DeclarationError, match="not historical"):
        _ = ctx.previous
