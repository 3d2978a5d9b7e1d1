"""Fixtures for the demo calculation tests; the machinery lives in calc_harness.py."""

from __future__ import annotations

import datetime

import pytest
from calc_harness import SPECS


@pytest.fixture
def day() -> datetime.date:
    return datetime.date(2024, 1, 10)  # a Wednesday


@pytest.fixture(params=sorted(SPECS))
def target_name(request: pytest.FixtureRequest) -> str:
    return request.param
