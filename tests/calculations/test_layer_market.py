from __future__ import annotations

import calc_harness  # noqa: F401  (puts the workspace root on sys.path for `layers`)
import pytest

from layers.market import (
    close_price,
    field_series,
    open_positions,
    position_values,
    previous_record,
    recent_records,
    recent_user_records,
    weights,
)


class Stub:
    """The slice of a context the market layer uses: roots and a user's records by days_ago."""

    def __init__(self, roots=None, user=None):
        self._roots = roots or {}
        self._user = user or {}
        self.user = self

    def root(self, source, days_ago=0):
        return self._roots.get((source, days_ago))

    def get(self, source, days_ago=0):
        return self._user.get((source, days_ago))

    def __getitem__(self, source):
        return self.get(source)


def test_recent_records_skip_weekends_oldest_first():
    ctx = Stub({("prices", 0): "mon", ("prices", 3): "fri", ("prices", 4): "thu"})
    assert recent_records(ctx, "prices", 4) == [(4, "thu"), (3, "fri"), (0, "mon")]
    assert recent_records(Stub(), "prices", 4) == []


def test_previous_record_skips_missing_days():
    ctx = Stub({("prices", 0): "mon", ("prices", 3): "fri"})
    assert previous_record(ctx, "prices", 4) == (3, "fri")
    assert previous_record(ctx, "prices", 2) is None  # Friday is beyond a 2-day search


def test_recent_user_records_includes_today_last():
    ctx = Stub(user={("trades", 0): ["t0"], ("trades", 2): ["t2"]})
    assert recent_user_records(ctx, "trades", 3) == [["t2"], ["t0"]]


def test_field_series_skips_missing_symbols():
    records = [(2, {"A": {"close": 1.0}}), (1, {"B": {"close": 5.0}}), (0, {"A": {"close": 2.0}})]
    assert field_series(records, "A", "close") == [1.0, 2.0]


def test_close_price_edge_cases():
    prices = {"A": {"close": 10.0}, "Z": {"close": 0.0}}
    assert close_price(prices, "A") == 10.0
    assert close_price(prices, "Z") == 0.0  # a zero quote counts as unpriced
    assert close_price(prices, "MISSING") == 0.0
    assert close_price(None, "A") == 0.0


def test_open_positions_and_values():
    portfolio = {
        "cash": 0,
        "positions": [
            {"symbol": "A", "quantity": 2.0, "avg_cost": 1},
            {"symbol": "A", "quantity": 1.0, "avg_cost": 1},
            {"symbol": "B", "quantity": 0.0, "avg_cost": 1},  # closed-out line
            {"symbol": "Z", "quantity": 5.0, "avg_cost": 1},  # zero price
        ],
    }
    assert [p["symbol"] for p in open_positions(portfolio)] == ["A", "A", "Z"]
    assert open_positions(None) == [] and open_positions({"positions": []}) == []
    prices = {"A": {"close": 10.0}, "B": {"close": 3.0}, "Z": {"close": 0.0}}
    assert position_values(portfolio, prices) == {"A": 30.0}


def test_weights_use_gross_exposure():
    assert weights({"A": 30.0, "B": -10.0}) == pytest.approx({"A": 0.75, "B": 0.25})
    assert weights({}) == {} and weights({"A": 0.0}) == {}
