from __future__ import annotations

import math

import calc_harness  # noqa: F401  (puts the workspace root on sys.path for `layers`)
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from layers.gbm import (
    barrier_hit_probability,
    log_norm_cdf,
    monte_carlo_hit_probability,
    norm_cdf,
    simulate_gbm_path,
    simulate_gbm_paths,
)
from layers.risk import (
    alpha,
    beta,
    herfindahl,
    historical_var,
    max_drawdown,
    parametric_var,
    portfolio_volatility,
    rsi,
    sharpe_ratio,
    sortino_ratio,
    volatility,
)

prices = st.lists(st.floats(min_value=0.0, max_value=1e6), max_size=40)


def test_volatility():
    assert volatility([0.01, -0.01]) == pytest.approx(math.sqrt(0.0002))
    assert volatility([0.01, -0.01], 252) == pytest.approx(math.sqrt(0.0002 * 252))
    assert volatility([0.05]) == 0.0  # one observation: no deviation


def test_max_drawdown():
    assert max_drawdown([100, 120, 90, 130, 65]) == pytest.approx(-0.5)
    assert max_drawdown([100, 120, 90, 130]) == pytest.approx(-0.25)
    assert max_drawdown([1, 2, 3]) == 0.0 and max_drawdown([]) == 0.0
    assert max_drawdown([0, 100, 0, 50]) == pytest.approx(-0.5)  # zero quotes are gaps


def test_rsi():
    assert rsi([1, 2, 3, 2]) == pytest.approx(200 / 3)  # gains 2, losses 1
    assert rsi([1, 2, 3]) == 100.0 and rsi([3, 2, 1]) == 0.0
    assert rsi([5, 5, 5]) == 50.0 and rsi([]) == 50.0 and rsi([7]) == 50.0
    assert rsi([10, 0, 1, 2], period=2) == 100.0  # only the last two changes count
    with pytest.raises(ValueError, match="period must be at least 1"):
        rsi([1, 2], period=0)


def test_sharpe_and_sortino():
    assert sharpe_ratio([0.01, 0.03]) == pytest.approx(
        math.sqrt(504)
    )  # 0.02 / (0.01 sqrt 2) x sqrt 252
    assert sharpe_ratio([0.01]) == 0.0 and sharpe_ratio([0.02, 0.02]) == 0.0
    assert sortino_ratio([0.02, -0.01]) == pytest.approx(
        math.sqrt(126)
    )  # 0.005 / sqrt(5e-5) x sqrt 252
    assert sortino_ratio([0.01, 0.02]) == 0.0  # no downside: undefined, reported as 0
    assert sortino_ratio([]) == 0.0


def test_beta_and_alpha():
    bench = [0.01, 0.02, 0.03]
    assert beta([0.02, 0.04, 0.06], bench) == pytest.approx(2.0)
    assert alpha([0.02, 0.04, 0.06], bench) == pytest.approx(0.0)
    assert alpha([0.03, 0.05, 0.07], bench) == pytest.approx(0.01)
    assert beta([0.01, 0.02], [0.01, 0.01]) == 0.0  # flat benchmark
    assert alpha([0.01, 0.03], [0.01, 0.01]) == pytest.approx(0.02)
    assert beta([], []) == 0.0 and alpha([], []) == 0.0
    with pytest.raises(ValueError):
        beta([0.1, 0.2], [0.1])


def test_value_at_risk_and_concentration():
    assert parametric_var(1000, 0.02) == pytest.approx(32.897, abs=1e-3)
    assert parametric_var(-1000, 0.02) == parametric_var(1000, 0.02)
    assert historical_var([-0.05, -0.02, 0.01, 0.03], 0.75) == pytest.approx(0.02)
    assert historical_var([0.01, 0.02], 0.95) == 0.0 and historical_var([], 0.95) == 0.0
    with pytest.raises(ValueError, match="level"):
        historical_var([0.1], 1.0)
    assert herfindahl({"a": 0.5, "b": 0.5}) == 0.5 and herfindahl({"a": 1.0}) == 1.0
    assert portfolio_volatility({"a": 0.6, "b": 0.8}, {"a": 0.1}) == pytest.approx(0.06)
    assert portfolio_volatility({"a": 0.6, "b": 0.8}, {"a": 0.1, "b": 0.1}) == pytest.approx(0.1)


@settings(max_examples=80, derandomize=True)
@given(prices)
def test_drawdown_and_rsi_ranges(series):
    assert -1.0 <= max_drawdown(series) <= 0.0
    assert 0.0 <= rsi(series) <= 100.0


def test_barrier_driftless_closed_form():
    # nu = mu - sigma^2/2 = 0 -> P = 2 Phi(b / (sigma sqrt T)); sigma sqrt T = 0.1, b = -0.1
    sigma = 0.02
    p = barrier_hit_probability(100, 100 * math.exp(-0.1), sigma * sigma / 2, sigma, 25)
    assert p == pytest.approx(2 * norm_cdf(-1.0)) and p == pytest.approx(0.3173105, abs=1e-6)
    up = barrier_hit_probability(100, 100 * math.exp(0.1), sigma * sigma / 2, sigma, 25)
    assert up == pytest.approx(p)


def test_barrier_edge_cases():
    assert barrier_hit_probability(100, 100, 0.0, 0.2, 10) == 1.0
    assert barrier_hit_probability(100, 90, 0.0, 0.2, 0) == 0.0
    assert barrier_hit_probability(100, 90, -0.01, 0.0, 20) == 1.0  # drift alone reaches -20%
    assert barrier_hit_probability(100, 90, 0.0, 0.0, 20) == 0.0
    assert barrier_hit_probability(100, 110, 0.01, 0.0, 20) == 1.0
    with pytest.raises(ValueError, match="must be positive"):
        barrier_hit_probability(0, 90, 0.0, 0.2, 10)


def test_barrier_monotone_in_horizon_and_distance():
    near = barrier_hit_probability(1.0, 0.9, 0.0, 0.02, 20)
    assert barrier_hit_probability(1.0, 0.9, 0.0, 0.02, 40) > near
    assert barrier_hit_probability(1.0, 0.8, 0.0, 0.02, 20) < near
    assert barrier_hit_probability(1.0, 0.9, -0.005, 0.02, 20) > near  # drifting toward it


def test_barrier_matches_monte_carlo_with_discrete_monitoring_correction():
    # Broadie-Glasserman: daily monitoring behaves like a continuous barrier moved by
    # exp(-0.5826 sigma sqrt(dt)) away from the spot.
    mu, sigma, steps = 0.0005, 0.02, 25
    simulated = monte_carlo_hit_probability(1.0, 0.92, mu, sigma, steps, paths=4000, seed=11)
    corrected = barrier_hit_probability(1.0, 0.92 * math.exp(-0.5826 * sigma), mu, sigma, steps)
    assert simulated == pytest.approx(corrected, abs=0.03)


@settings(max_examples=100, derandomize=True)
@given(
    st.floats(min_value=0.01, max_value=1e4),
    st.floats(min_value=0.01, max_value=1e4),
    st.floats(min_value=-0.5, max_value=0.5),
    st.floats(min_value=0.0, max_value=2.0),
    st.floats(min_value=0.0, max_value=500.0),
)
def test_barrier_probability_is_a_probability(spot, barrier, mu, sigma, horizon):
    p = barrier_hit_probability(spot, barrier, mu, sigma, horizon)
    assert 0.0 <= p <= 1.0 and math.isfinite(p)


def test_log_norm_cdf_tail_is_finite_and_continuous():
    assert log_norm_cdf(0.0) == pytest.approx(math.log(0.5))
    assert log_norm_cdf(-10.0) == pytest.approx(math.log(norm_cdf(-10.0)))
    assert log_norm_cdf(-36.0) == pytest.approx(
        math.log(norm_cdf(-36.0)), rel=1e-6
    )  # asymptotic branch
    assert math.isfinite(log_norm_cdf(-1e6))


def test_simulation_is_seeded_and_reproducible():
    a = simulate_gbm_path(100, 0.001, 0.02, 10, seed=3)
    assert a == simulate_gbm_path(100, 0.001, 0.02, 10, seed=3)
    assert a != simulate_gbm_path(100, 0.001, 0.02, 10, seed=4)
    assert len(a) == 11 and a[0] == 100 and all(p > 0 for p in a)
    flat = simulate_gbm_path(100, 0.01, 0.0, 3, seed=0)  # no noise: S_k = S_0 e^{mu k}
    assert flat == pytest.approx([100 * math.exp(0.01 * k) for k in range(4)])
    many = simulate_gbm_paths(1.0, 0.0, 0.1, 5, paths=3, seed=9)
    assert len(many) == 3 and many[0] != many[1]
    assert monte_carlo_hit_probability(1.0, 0.9, 0.0, 0.1, 5, paths=0, seed=1) == 0.0
    with pytest.raises(ValueError, match="steps"):
        simulate_gbm_path(1.0, 0.0, 0.1, -1, seed=1)
