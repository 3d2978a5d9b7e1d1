from __future__ import annotations

import math

import calc_harness  # noqa: F401  (puts the workspace root on sys.path for `layers`)
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from layers.returns import cumulative_return, log_return, log_returns, simple_return, simple_returns
from layers.stats import (
    clamp,
    correlation,
    covariance,
    mean,
    median,
    percentile,
    rounded,
    safe_div,
    stdev,
    variance,
    weighted_mean,
)


def test_mean_and_empty():
    assert mean([1, 2, 3, 4]) == 2.5
    assert mean([]) == 0.0


def test_variance_sample_and_population():
    data = [2, 4, 4, 4, 5, 5, 7, 9]  # squares about the mean 5 sum to 32
    assert variance(data) == pytest.approx(32 / 7)
    assert variance(data, sample=False) == 4.0
    assert stdev(data, sample=False) == 2.0
    assert variance([5.0]) == 0.0 and stdev([]) == 0.0


def test_covariance_and_correlation():
    assert covariance([1, 2, 3], [2, 4, 6]) == 2.0
    assert correlation([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert correlation([1, 2, 3], [6, 4, 2]) == pytest.approx(-1.0)
    assert correlation([1, 1, 1], [1, 2, 3]) == 0.0  # constant series: no correlation, not NaN
    assert covariance([1], [1]) == 0.0
    with pytest.raises(ValueError, match="different lengths"):
        covariance([1, 2], [1])


def test_percentile_and_median():
    assert percentile([4, 1, 3, 2], 50) == 2.5
    assert percentile([1, 2, 3, 4], 0) == 1 and percentile([1, 2, 3, 4], 100) == 4
    assert percentile([1, 2, 3, 4, 5], 90) == pytest.approx(4.6)
    assert median([3, 1, 2]) == 2
    assert percentile([], 50) == 0.0
    with pytest.raises(ValueError, match="q must be within"):
        percentile([1], 101)


def test_safe_div_clamp_weighted_mean():
    assert safe_div(1, 4) == 0.25
    assert safe_div(1, 0) == 0.0 and safe_div(1, 0, default=5.0) == 5.0
    assert safe_div(1e308, 1e-308) == 0.0  # overflow to infinity is not a result
    assert clamp(5, 0, 1) == 1 and clamp(-5, 0, 1) == 0 and clamp(0.5, 0, 1) == 0.5
    assert weighted_mean([1, 3], [1, 3]) == 2.5
    assert weighted_mean([1, 3], [0, 0]) == 0.0
    with pytest.raises(ValueError, match="2 values but 1 weights"):
        weighted_mean([1, 2], [1])


def test_rounded_is_stable_and_finite():
    assert rounded(1.23456789, 4) == 1.2346
    assert str(rounded(-0.0000001, 6)) == "0.0"  # never "-0.0": same value, same bytes
    assert rounded(math.nan) == 0.0 and rounded(math.inf) == 0.0


def test_returns():
    assert simple_return(100, 110) == pytest.approx(0.1)
    assert simple_return(0, 5) == 0.0  # zero price: no return rather than a division error
    assert log_return(1, math.e) == pytest.approx(1.0)
    assert log_return(0, 1) == 0.0 and log_return(1, 0) == 0.0
    assert simple_returns([100, 110, 99]) == pytest.approx([0.1, -0.1])
    assert simple_returns([100]) == [] and simple_returns([]) == []
    assert log_returns([1, math.e, 1]) == pytest.approx([1.0, -1.0])
    assert cumulative_return([0.1, -0.1]) == pytest.approx(-0.01)
    assert cumulative_return([]) == 0.0


@settings(max_examples=60, derandomize=True)
@given(st.lists(st.floats(min_value=-1e6, max_value=1e6), max_size=30))
def test_statistics_are_finite_and_ordered(values):
    assert math.isfinite(variance(values)) and variance(values) >= 0
    if values:
        assert min(values) - 1e-6 <= mean(values) <= max(values) + 1e-6
        assert min(values) <= percentile(values, 37) <= max(values)
