"""Symbols whose 14-day RSI is overbought (> 70) or oversold (< 30)."""

from __future__ import annotations

OVERBOUGHT = 70.0
OVERSOLD = 30.0
MIN_OBSERVATIONS = 5  # fewer closes than this make an RSI too noisy to act on


def rsi_signals(ctx):
    """``{overbought: [symbols], oversold: [symbols], judged: n}``, symbols sorted."""
    stats = ctx.dep("symbol_stats") or {}
    judged = {s: v["rsi"] for s, v in stats.items() if v["observations"] >= MIN_OBSERVATIONS}
    return {
        "overbought": sorted(s for s, value in judged.items() if value > OVERBOUGHT),
        "oversold": sorted(s for s, value in judged.items() if value < OVERSOLD),
        "judged": len(judged),
    }
