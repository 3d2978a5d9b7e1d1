"""Each symbol's beta and alpha against its own sector benchmark over 30 calendar days."""

from __future__ import annotations

from itertools import pairwise

from layers.market import recent_records
from layers.returns import simple_return
from layers.risk import alpha, beta
from layers.stats import rounded

WINDOW_DAYS = 30  # must match `lookback` in BUILD.toml


def symbol_betas(ctx):
    """``{symbol: {sector, beta, alpha, observations}}``; ``observations`` counts return pairs.

    Only days with both the symbol's close and its benchmark's level count, so weekends and
    gaps never pair a price move with the wrong index move.
    """
    benchmarks = dict(recent_records(ctx, "benchmarks", WINDOW_DAYS))
    prices = [
        (ago, record)
        for ago, record in recent_records(ctx, "prices", WINDOW_DAYS)
        if ago in benchmarks
    ]
    result = {}
    for symbol, quote in ctx.root("prices").items():
        sector = quote.get("sector", "market")
        pairs = []
        for ago, record in prices:
            entry, index = (
                record.get(symbol),
                benchmarks[ago].get(sector) or benchmarks[ago].get("market"),
            )
            if (
                entry is not None
                and index is not None
                and entry["close"] > 0
                and index["level"] > 0
            ):
                pairs.append((float(entry["close"]), float(index["level"])))
        asset = [simple_return(a[0], b[0]) for a, b in pairwise(pairs)]
        bench = [simple_return(a[1], b[1]) for a, b in pairwise(pairs)]
        result[symbol] = {
            "sector": sector,
            "beta": rounded(beta(asset, bench), 6),
            "alpha": rounded(alpha(asset, bench), 8),
            "observations": len(asset),
        }
    return result
