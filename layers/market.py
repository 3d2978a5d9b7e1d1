"""Reading the synthetic market's root data through a calculation context.

Look-backs count calendar days and markets close at weekends, so ``ctx.root(source,
days_ago=n)`` is often ``None``: every helper here skips days without data instead of treating
them as zero. Record shapes are those of ``docs/dev/market-data.md``.
"""

from __future__ import annotations

from typing import Any

from layers.stats import safe_div


def recent_records(ctx: Any, source: str, days: int) -> list[tuple[int, Any]]:
    """``(days_ago, record)`` for every day in ``days .. 0`` that has data, oldest first."""
    found = []
    for days_ago in range(days, -1, -1):
        record = ctx.root(source, days_ago=days_ago)
        if record is not None:
            found.append((days_ago, record))
    return found


def previous_record(ctx: Any, source: str, max_days: int) -> tuple[int, Any] | None:
    """The most recent record strictly before today within ``max_days``, or ``None``."""
    for days_ago in range(1, max_days + 1):
        record = ctx.root(source, days_ago=days_ago)
        if record is not None:
            return days_ago, record
    return None


def recent_user_records(ctx: Any, source: str, days: int) -> list[Any]:
    """This user's records of ``source`` for ``days .. 0``, oldest first, skipping missing days."""
    found = []
    for days_ago in range(days, 0, -1):
        record = ctx.user.get(source, days_ago=days_ago)
        if record is not None:
            found.append(record)
    today = ctx.user[source]
    if today is not None:
        found.append(today)
    return found


def field_series(records: list[tuple[int, Any]], key: str, field: str) -> list[float]:
    """``record[key][field]`` across ``records`` (from :func:`recent_records`), skipping gaps."""
    series = []
    for _, record in records:
        entry = record.get(key)
        if entry is not None and field in entry:
            series.append(float(entry[field]))
    return series


def close_price(prices: dict[str, Any] | None, symbol: str) -> float:
    """The symbol's close, or ``0.0`` when it is not quoted (callers treat 0 as unpriced)."""
    if not prices:
        return 0.0
    quote = prices.get(symbol)
    if quote is None:
        return 0.0
    close = float(quote.get("close", 0.0))
    return close if close > 0 else 0.0


def open_positions(portfolio: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Positions with a non-zero quantity (closed-out lines have quantity 0)."""
    if not portfolio:
        return []
    return [p for p in portfolio.get("positions", ()) if float(p.get("quantity", 0.0)) != 0.0]


def position_values(
    portfolio: dict[str, Any] | None, prices: dict[str, Any] | None
) -> dict[str, float]:
    """Market value per symbol of the open, priced positions (unpriced ones are left out)."""
    values: dict[str, float] = {}
    for position in open_positions(portfolio):
        close = close_price(prices, position["symbol"])
        if close > 0:
            symbol = position["symbol"]
            values[symbol] = values.get(symbol, 0.0) + float(position["quantity"]) * close
    return values


def weights(values: dict[str, float]) -> dict[str, float]:
    """Each value's share of the gross (absolute) total; empty when the total is zero."""
    gross = sum(abs(v) for v in values.values())
    if gross == 0:
        return {}
    return {key: safe_div(abs(value), gross) for key, value in values.items()}
