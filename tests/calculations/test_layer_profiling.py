from __future__ import annotations

from itertools import pairwise

import pytest
from calc_harness import trade  # also puts the workspace root on sys.path for `layers`
from hypothesis import given, settings
from hypothesis import strategies as st

from layers.attribution import luck_vs_skill
from layers.geometry import convex_hull, efficient_frontier, hull_contains, polygon_area
from layers.profiling import smart_money_components, smart_money_score
from layers.psychometrics import disposition_skew, flatten, notional, revenge_trading


def test_hull_of_square_drops_interior_point():
    points = [(0, 0), (1, 0), (1, 1), (0, 1), (0.5, 0.5), (1, 1)]
    assert convex_hull(points) == [(0, 0), (1, 0), (1, 1), (0, 1)]
    assert polygon_area(convex_hull(points)) == 1.0


def test_hull_degenerate_inputs():
    assert convex_hull([]) == []
    assert convex_hull([(1, 2)]) == [(1.0, 2.0)]
    assert convex_hull([(2, 2), (0, 0), (1, 1)]) == [(0, 0), (2, 2)]  # collinear: end points
    assert polygon_area([(0, 0), (2, 2)]) == 0.0


def test_efficient_frontier_runs_up_the_hull_to_the_best_return():
    points = [(0.1, 0.05), (0.2, 0.10), (0.3, 0.12), (0.25, 0.02), (0.4, 0.11)]
    assert efficient_frontier(points) == [(0.1, 0.05), (0.2, 0.10), (0.3, 0.12)]


def test_efficient_frontier_edge_cases():
    assert efficient_frontier([(0.1, 0.01), (0.1, 0.05), (0.2, 0.08)]) == [(0.1, 0.05), (0.2, 0.08)]
    assert efficient_frontier([(0.1, 0.2), (0.2, 0.1)]) == [(0.1, 0.2)]  # least risk, best return
    assert efficient_frontier([(0.1, 0.1)]) == [(0.1, 0.1)]
    assert efficient_frontier([]) == []


coordinates = st.integers(min_value=-40, max_value=40).map(lambda n: n / 8)


@settings(max_examples=150, derandomize=True)
@given(st.lists(st.tuples(coordinates, coordinates), min_size=1, max_size=25))
def test_hull_contains_every_point_and_frontier_is_efficient(points):
    hull = convex_hull(points)
    assert all(hull_contains(hull, p) for p in points)
    assert set(hull) <= {(float(x), float(y)) for x, y in points}
    assert polygon_area(hull) >= 0.0
    frontier = efficient_frontier(points)
    assert set(frontier) <= set(hull) or len(hull) < 3
    for a, b in pairwise(frontier):
        assert a[0] < b[0] and a[1] < b[1]
    best = max(y for _, y in points)
    assert frontier[-1][1] == best
    least_risk = min(x for x, _ in points)
    assert frontier[0][0] == least_risk


def test_revenge_trading_counts_escalations_after_losses():
    trades = [
        trade("buy", 10, 10),
        trade("sell", 10, 9, -10, 3),
        trade("buy", 30, 10),
        trade("buy", 10, 10),
    ]
    # buys 100, 300, 100: mean 166.7; the buy right after the loss is 300
    assert revenge_trading(trades) == {"losses": 1, "escalations": 1, "score": 1.0}
    calm = [
        trade("buy", 10, 10),
        trade("sell", 10, 9, -10, 3),
        trade("buy", 5, 10),
        trade("buy", 30, 10),
    ]
    assert revenge_trading(calm)["score"] == 0.0
    stopped = [trade("buy", 10, 10), trade("sell", 10, 9, -10, 3)]
    assert revenge_trading(stopped) == {"losses": 1, "escalations": 0, "score": 0.0}
    assert revenge_trading([]) == {"losses": 0, "escalations": 0, "score": 0.0}
    assert revenge_trading([trade("sell", 1, 1, 5.0, 2)])["losses"] == 0  # a winning close


def test_disposition_skew():
    trades = [
        trade("sell", 1, 1, 5.0, 5),
        trade("sell", 1, 1, 2.0, 15),
        trade("sell", 1, 1, -3.0, 30),
        trade("sell", 1, 1, 0.0, 99),
        trade("buy", 1, 1),
    ]
    assert disposition_skew(trades) == pytest.approx(0.5)  # losers 30 days vs winners 10
    assert disposition_skew([trade("sell", 1, 1, 5.0, 5)]) == 0.0  # winners only
    assert disposition_skew([trade("sell", 1, 1, 5.0, 0), trade("sell", 1, 1, -5.0, 0)]) == 0.0
    assert disposition_skew(
        [trade("sell", 1, 1, 5.0, 30), trade("sell", 1, 1, -5.0, 10)]
    ) == pytest.approx(-0.5)


def test_flatten_and_notional():
    assert flatten([[1, 2], None, [], [3]]) == [1, 2, 3]
    assert notional(trade("sell", -2, 5)) == 10.0
    assert notional({"side": "buy", "quantity": None, "price": 5}) == 0.0


def test_luck_vs_skill():
    split = luck_vs_skill(0.03, 0.01, 2.0)
    assert split["market"] == pytest.approx(0.02) and split["alpha"] == pytest.approx(0.01)
    assert split["skill_share"] == pytest.approx(1 / 3)
    assert luck_vs_skill(0.0, 0.0, 1.0)["skill_share"] == 0.0
    assert luck_vs_skill(0.02, 0.01, 0.0)["skill_share"] == 1.0  # no beta: all alpha


def test_smart_money_score():
    components = smart_money_components(0.5, 0.8, 0.25, 0.4)
    assert components == pytest.approx(
        {"skill": 0.5, "efficiency": 0.8, "discipline": 0.75, "patience": 0.6}
    )
    assert smart_money_score(components) == pytest.approx(64.5)
    assert smart_money_components(0.5, 0.5, 0.0, -0.3)["patience"] == 1.0
    assert smart_money_score(smart_money_components(9, 9, -9, -9)) == pytest.approx(100.0)
    assert smart_money_score(smart_money_components(-1, -1, 2, 2)) == 0.0
