"""The market's root sources: :class:`MarketSource` serves one generator of
:class:`~btbuild.plugins.market.Market` (prices, benchmarks, insights per date; portfolio and
trades per user) with its availability, fingerprint and fabrication strategy."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import TYPE_CHECKING, Any

import xxhash

from btbuild.plugins.sources import RootSource

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

    from btbuild.plugins.market import Market, MarketSettings


class MarketSource(RootSource):
    """One of the market's sources; ``kind`` picks the generator."""

    def __init__(self, market: Market, name: str, scope: str, config_key: str):
        self.market = market
        self.name = name
        self.scope = scope  # type: ignore[assignment]  # a str checked against SCOPES when the plugin registers
        self._config_key = config_key
        self._user_digests: list[int] | None = None

    def _index(self, day: date) -> int | None:
        t = self.market.calendar.index(day)
        if t is None or (
            self.name == "insights"
            and (not self.market.settings.insights or day.toordinal() % 5 == 0)
        ):
            return None
        return t

    def available(self, day: date) -> bool:
        return self._index(day) is not None

    def _require(self, day: date) -> int:
        t = self._index(day)
        if t is None:
            raise self.unavailable(day)
        return t

    def fingerprint(self, day: date) -> str:
        from btbuild.plugins.market import GENERATOR_VERSION

        self._require(day)
        revision = self.market.settings.revision_of.get(day, 0)
        text = (
            f"{GENERATOR_VERSION}|{self.name}|{self._config_key}|{day.isoformat()}|rev={revision}"
        )
        return xxhash.xxh3_128_hexdigest(text.encode())

    def load(self, day: date) -> Any:
        if self.scope != "date":
            return super().load(day)
        return getattr(self.market, self.name)(self._require(day))

    def users(self, day: date) -> Iterator[tuple[str, Any]]:
        if self.scope != "user":
            yield from super().users(day)
            return
        t = self._require(day)
        generate, user_id = getattr(self.market, self.name), self.market.user_id
        for n in range(1, self.market.settings.users + 1):
            yield user_id(n), generate(n, t)

    def users_in_shard(self, day: date, shard: int, shards: int) -> Iterator[tuple[str, Any]]:
        """Generates only the part's users: their ids are cheap, their records are not."""
        if self.scope != "user":
            yield from super().users_in_shard(day, shard, shards)
            return
        t = self._require(day)
        generate, user_id = getattr(self.market, self.name), self.market.user_id
        for n, digest in enumerate(self._digests(), start=1):
            if digest % shards == shard:  # user_shard(user_id(n), shards) == shard
                yield user_id(n), generate(n, t)

    def _digests(self) -> list[int]:
        """The hash :func:`user_shard` takes of each user id, computed once per source."""
        if self._user_digests is None:
            user_id = self.market.user_id
            self._user_digests = [
                xxhash.xxh3_64_intdigest(user_id(n).encode())
                for n in range(1, self.market.settings.users + 1)
            ]
        return self._user_digests

    def strategy(self) -> SearchStrategy[Any]:
        from btbuild.plugins import market_strategies

        return market_strategies.for_source(self.name, self.market.symbols[:8] or ["AAAA"])


def market_sources(settings: MarketSettings) -> list[RootSource]:
    from btbuild.plugins.market import Market

    market = Market.for_settings(settings)
    common = f"seed={settings.seed};instruments={settings.instruments};start={settings.start}"
    with_users = f"{common};users={settings.users}"
    return [
        MarketSource(market, "prices", "date", common),
        MarketSource(market, "benchmarks", "date", common),
        MarketSource(market, "insights", "date", f"{common};insights={settings.insights}"),
        MarketSource(market, "portfolio", "user", with_users),
        MarketSource(market, "trades", "user", with_users),
    ]
