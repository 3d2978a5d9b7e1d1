"""The demo workspace as a whole: declarations are sound, and a catch-up run is clean and deterministic."""

from __future__ import annotations

import datetime
import json
import re

import pytest
from calc_harness import (
    CALCULATIONS,
    REPO,
    SPECS,
    build_demo,
    check_json,
    entry_of,
    topological_order,
)
from demo_market import DemoMarket
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

KNOWN_SOURCES = {"prices", "benchmarks", "insights", "portfolio", "trades"}
PACKAGES = {"pricing", "risk", "signals", "profiling", "aggregates", "alerts"}


def test_declarations_are_sound(target_name):
    spec = SPECS[target_name]
    assert re.fullmatch(r"[a-z][a-z0-9_]*", spec.name)
    assert spec.kind in {"per_user", "per_date"}
    assert spec.entry_file.is_file(), f"{spec.label}: missing {spec.entry_file}"
    entry = entry_of(spec)
    assert callable(getattr(entry, "process", None) if isinstance(entry, type) else entry)
    assert set(spec.roots) | set(spec.optional_roots) <= KNOWN_SOURCES
    assert set(spec.lookback) <= set(spec.roots) | set(spec.optional_roots)
    for label in spec.deps:
        assert re.fullmatch(r"//[a-z/]+:[a-z][a-z0-9_]*", label), label
        assert label.rsplit(":", 1)[1] in SPECS and SPECS[label.rsplit(":", 1)[1]].label == label
    if spec.kind == "per_date":
        assert not {"portfolio", "trades"} & set(spec.roots + spec.optional_roots), (
            "user sources need per_user"
        )
    source = spec.entry_file.read_text(encoding="utf-8")
    imports = re.findall(r"^(?:from|import) ([a-zA-Z_.]+)", source, re.M)
    assert all(
        m.split(".")[0] in {"__future__", "layers", "math", "datetime", "itertools"}
        for m in imports
    ), imports


def test_workspace_covers_the_features_the_demo_shows():
    assert len(SPECS) >= 20
    assert {spec.package for spec in SPECS.values()} == PACKAGES
    kinds = {spec.kind for spec in SPECS.values()}
    assert kinds == {"per_user", "per_date"}
    assert {s.kind for s in SPECS.values() if s.historical} == {"per_user", "per_date"}
    assert any(s.schedule == {"weekdays": [4]} for s in SPECS.values())
    assert any(s.schedule == {"monthdays": [1]} for s in SPECS.values())
    assert any("insights" in s.optional_roots for s in SPECS.values())
    assert any(s.lookback for s in SPECS.values())
    assert any(s.checks for s in SPECS.values())
    depth: dict[str, int] = {}
    for name in topological_order():
        depth[name] = 1 + max((depth[d] for d in SPECS[name].dep_names), default=0)
    assert max(depth.values()) >= 4
    modules = [p.stem for p in CALCULATIONS.rglob("*.py")]
    assert len(modules) == len(set(modules)), "module names are unique across packages"


DAYS = [
    datetime.date(2024, 1, 1) + datetime.timedelta(days=i) for i in range(65)
]  # through March 5th


@pytest.fixture(scope="module")
def demo_run():
    return build_demo(DemoMarket(), DAYS)


def test_catch_up_runs_every_target_and_skips_weekends(demo_run):
    ran = {name for cells in demo_run.values() for name in cells}
    assert ran == set(SPECS)
    saturday = demo_run[datetime.date(2024, 1, 6)]
    assert set(saturday) == set()  # no market data, and nothing monthly is due
    thursday = demo_run[datetime.date(2024, 2, 1)]
    assert thursday["monthly_sector_performance"]["available"] is False  # no close before January
    assert "market_outlook" not in thursday and "risk_distribution" not in thursday
    march = demo_run[datetime.date(2024, 3, 1)]["monthly_sector_performance"]
    assert march["month"] == "2024-02" and march["available"] is True and march["best"] is not None
    friday = demo_run[datetime.date(2024, 1, 12)]
    assert {"market_outlook", "risk_distribution"} <= set(friday)


def test_historical_targets_accumulate(demo_run):
    trading_days = [d for d in DAYS if "cumulative_pnl" in demo_run[d]]
    assert [demo_run[d]["cumulative_pnl"]["days"] for d in trading_days] == list(
        range(1, len(trading_days) + 1)
    )
    last = demo_run[trading_days[-1]]["risk_increase"]
    assert any(v["previous"] is not None for v in last.values())


def test_results_exercise_the_interesting_branches(demo_run):
    day = demo_run[datetime.date(2024, 1, 31)]
    assert any(v["efficiency"] == 1.0 for v in day["risk_geometry"].values())  # one-position users
    assert any(v["points"] == 0 for v in day["risk_geometry"].values())  # empty portfolios
    assert day["barrier_alert"] and len(day["barrier_alert"]) < len(day["barrier_risk"])
    assert day["leaderboard"]["users"] > 0
    insight_less = [d for d in DAYS if d.weekday() < 5 and d.toordinal() % 5 == 0]
    assert all(demo_run[d]["sentiment"]["available"] is False for d in insight_less)


def test_catch_up_is_deterministic(demo_run):
    again = build_demo(DemoMarket(), DAYS)
    canonical = lambda run: json.dumps({d.isoformat(): c for d, c in run.items()}, sort_keys=True)  # noqa: E731
    assert canonical(again) == canonical(demo_run)


class RandomMarket(DemoMarket):
    """A DemoMarket whose quotes and holdings come from Hypothesis (zero prices included)."""

    def __init__(self, closes, holdings, trades):
        super().__init__(symbols=len(closes[0]), users=len(holdings))
        self._closes, self._holdings, self._trades = closes, holdings, trades

    def _quotes(self, day):
        row = self._closes[(day - self.start).days % len(self._closes)]
        return {
            s: {"close": c, "open": c, "high": c, "low": c, "volume": 1, "sector": self.symbols[s]}
            for s, c in zip(sorted(self.symbols), row, strict=True)
        }

    def user_record(self, source, user_id, day):
        if not self.available(source, day):
            return None
        index = int(user_id[1:]) - 1
        symbols = sorted(self.symbols)
        if source == "portfolio":
            cash, lines = self._holdings[index]
            return {
                "cash": cash,
                "positions": [
                    {
                        "symbol": symbols[s % len(symbols)],
                        "quantity": q,
                        "avg_cost": c,
                        "opened": "2024-01-01",
                    }
                    for s, q, c in lines
                ],
            }
        return [
            {
                "symbol": symbols[0],
                "side": side,
                "quantity": q,
                "price": p,
                "realized_pnl": pnl,
                "holding_days": h,
            }
            for side, q, p, pnl, h in self._trades[index]
        ]


price = st.one_of(st.just(0.0), st.floats(min_value=0.01, max_value=1e5))
money = st.floats(min_value=-1e6, max_value=1e6)
line = st.tuples(
    st.integers(0, 5),
    st.floats(min_value=-100, max_value=1e4),
    st.floats(min_value=0, max_value=1e4),
)
a_trade = st.tuples(
    st.sampled_from(["buy", "sell"]),
    st.floats(min_value=0, max_value=1e4),
    st.floats(min_value=0, max_value=1e4),
    st.one_of(st.none(), money),
    st.one_of(st.none(), st.integers(0, 5000)),
)


@settings(
    max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    st.integers(1, 6).flatmap(
        lambda n: st.lists(st.lists(price, min_size=n, max_size=n), min_size=1, max_size=6)
    ),
    st.lists(st.tuples(money, st.lists(line, max_size=4)), min_size=1, max_size=4),
    st.data(),
)
def test_random_markets_give_json_results_without_nan(closes, holdings, data):
    trades = data.draw(
        st.lists(st.lists(a_trade, max_size=4), min_size=len(holdings), max_size=len(holdings))
    )
    days = [
        datetime.date(2024, 1, 29) + datetime.timedelta(days=i) for i in range(6)
    ]  # Mon..Sat, crossing the 1st
    market = RandomMarket(closes, holdings, trades)
    market.start = datetime.date(2024, 1, 1)
    result = build_demo(market, days)
    assert len(result[days[1]]) >= 20  # Tuesday: everything daily ran, whatever the data
    for day, cells in result.items():
        for name, value in cells.items():
            check_json(value, f"{name}@{day}")


def test_every_demo_target_declares_a_schema_its_results_satisfy(demo_run):
    """65 days of the demo on the test market: every value matches its target's schema."""
    from btbuild.execution.schemas import violation
    from btbuild.workspace.config import load_workspace

    targets = load_workspace(REPO).targets
    assert all(target.schema_json for target in targets.values())
    checked = 0
    for day, cells in demo_run.items():
        for name, result in cells.items():
            target = targets[name]
            values = list(result.values()) if target.kind == "per_user" else [result]
            for value in values:
                assert violation(target.schema_json, value) is None, (name, day, value)
                checked += 1
    assert checked > 1000


def test_demo_uses_each_calculation_feature():
    from btbuild.workspace.config import load_workspace

    workspace = load_workspace(REPO)
    targets = workspace.targets.values()
    assert any(t.users for t in targets) and workspace.segments  # a segment-only target
    assert any(days == 7 for t in targets for _label, days in t.dep_lookback)
    assert any(t.ttl_days for t in targets)
    assert any(t.alert for t in targets) and workspace.alerts is not None


def test_segment_target_sees_only_traders_and_trend_skips_the_weekend(demo_run):
    monday = demo_run[datetime.date(2024, 1, 15)]
    activity = monday["trade_activity"]
    assert activity and all(value["trades"] >= 1 for value in activity.values())
    trend = monday["value_trend"]
    # Monday's week: Tue..Fri of the week before and today (the weekend has no valuation)
    assert {value["days"] for value in trend.values()} == {6}
    user, value = next(iter(trend.items()))
    totals = [
        demo_run[datetime.date(2024, 1, d)]["portfolio_value"][user]["total"]
        for d in (15, 12, 11, 10, 9, 8)
    ]
    assert value == {
        "days": 6,
        "change": round(totals[0] - totals[-1], 2),
        "high": max(totals),
        "low": min(totals),
    }
