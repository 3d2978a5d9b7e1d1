from __future__ import annotations

from datetime import date, timedelta

import pytest

from btbuild.errors import ConfigError, PluginError
from btbuild.plugins import MemorySource, RootIndex

D0 = date(2024, 1, 1)
DAYS = [D0 + timedelta(days=i) for i in range(5)]


class Counting(MemorySource):
    def __init__(self, *args):
        super().__init__(*args)
        self.calls = 0

    def fingerprint(self, day):
        self.calls += 1
        return super().fingerprint(day)


def test_build_asks_each_source_once_per_date():
    prices = Counting("prices", "date", {d: {"x": i} for i, d in enumerate(DAYS) if i != 2})
    users = Counting("portfolio", "user", {d: {"u1": 1} for d in DAYS})
    index = RootIndex.build({"prices": prices, "portfolio": users}, DAYS)
    assert prices.calls == 4 and users.calls == 5
    for _ in range(3):
        assert index.missing(["prices", "portfolio"], DAYS[2]) == ("prices",)
        assert index.missing(["portfolio"], DAYS[2]) == ()
        assert index.available("prices", DAYS[1])
    assert prices.calls == 4
    fps = index.fingerprints(["prices", "portfolio"], DAYS[2])
    assert list(fps) == ["portfolio", "prices"] and fps["prices"] is None
    assert index.fingerprint("prices", DAYS[0]) != index.fingerprint("prices", DAYS[1])


def test_dates_outside_the_range_are_asked_lazily_once():
    prices = Counting("prices", "date", {D0 - timedelta(days=1): 1})
    index = RootIndex.build({"prices": prices}, [])
    assert index.available("prices", D0 - timedelta(days=1))
    assert index.available("prices", D0 - timedelta(days=1))
    assert prices.calls == 1


def test_unknown_source_and_failing_source():
    class Broken(MemorySource):
        def available(self, day):
            raise OSError("network down")

    index = RootIndex({"prices": Broken("prices", "date")})
    with pytest.raises(ConfigError, match="unknown root source 'insights' \\(known: prices\\)"):
        index.missing(["insights"], D0)
    with pytest.raises(
        PluginError, match="root source 'prices' failed on 2024-01-01: OSError: network down"
    ):
        index.available("prices", D0)
