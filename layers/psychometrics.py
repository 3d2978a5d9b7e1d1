"""Behavioural signals from a user's trades (records shaped as the ``trades`` root source).

* Revenge trading: after a losing close, does the next purchase take *more* risk than usual?
* Disposition skew: are losers held longer than winners (the disposition effect)?
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from layers.stats import mean, safe_div

Trade = dict[str, Any]


def notional(trade: Trade) -> float:
    return abs(float(trade.get("quantity") or 0.0) * float(trade.get("price") or 0.0))


def is_loss(trade: Trade) -> bool:
    pnl = trade.get("realized_pnl")
    return trade.get("side") == "sell" and pnl is not None and pnl < 0


def flatten(days: Iterable[Sequence[Trade] | None]) -> list[Trade]:
    """One chronological list from per-day trade lists (oldest day first; ``None`` days skipped)."""
    return [trade for day in days if day for trade in day]


def revenge_trading(trades: Sequence[Trade]) -> dict[str, float]:
    """Share of losing closes whose next buy is larger than the user's average buy.

    ``trades`` is chronological. Returns ``losses`` (losing closes), ``escalations`` (those
    followed by an above-average buy) and ``score = escalations / losses`` (0 with no losses).
    """
    buys = [notional(t) for t in trades if t.get("side") == "buy"]
    baseline = mean(buys)
    losses = escalations = 0
    for index, trade in enumerate(trades):
        if not is_loss(trade):
            continue
        losses += 1
        following = next((t for t in trades[index + 1 :] if t.get("side") == "buy"), None)
        if following is not None and notional(following) > baseline:
            escalations += 1
    return {"losses": losses, "escalations": escalations, "score": safe_div(escalations, losses)}


def disposition_skew(trades: Iterable[Trade]) -> float:
    """``(L - W) / (L + W)`` with L and W the mean holding days of losing and winning closes.

    In [-1, 1]: positive when losers are held longer than winners. 0 without both kinds.
    """
    winners: list[float] = []
    losers: list[float] = []
    for trade in trades:
        pnl, days = trade.get("realized_pnl"), trade.get("holding_days")
        if trade.get("side") != "sell" or pnl is None or days is None or pnl == 0:
            continue
        (winners if pnl > 0 else losers).append(float(days))
    if not winners or not losers:
        return 0.0
    held_losers, held_winners = mean(losers), mean(winners)
    return safe_div(held_losers - held_winners, held_losers + held_winners)
