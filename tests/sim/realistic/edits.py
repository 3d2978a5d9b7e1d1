"""The corpus' hand-written edits: behaviour changes of the classes of issue 11, and refactors.

Each bug is a mistake a user makes, named by its class: ``threshold`` (a cut-off or a band
edge moved where fabricated values rarely fall), ``small count`` (``<`` / ``<=`` against a
small integer), ``previous`` (carrying yesterday's state forward wrongly: invisible when
``ctx.previous`` is always a first-day output), ``top-k`` and ``percentile`` (over many users),
``shorts`` (negative units), ``jsonl`` (the untyped JSON Lines source), ``look-back``,
``rounding`` and ``formula``. Every bug changes the real results of the base window (the
oracle checks it); every refactor keeps them and changes the code hash (renames alone are
normalized away and prove nothing).
"""

from __future__ import annotations

from harness import Edit, bug, refactor

LAYER = "corpuslib/bands.py"

BUGS: list[Edit] = [
    # -- book/holdings
    bug(
        "rounding", "holdings", "hhi to 2 places", ('"hhi": round(hhi, 4)', '"hhi": round(hhi, 2)')
    ),
    bug(
        "formula",
        "holdings",
        "closed-out lines count as positions",
        ('position["quantity"] <= 0', 'position["quantity"] < 0'),
    ),
    # -- book/risk_band (a table of bands in a layer)
    bug(
        "threshold",
        "risk_band",
        "balanced up to 0.28",
        ('(0.25, "balanced")', '(0.28, "balanced")'),
    ),
    bug("threshold", "risk_band", "focused up to 0.45", ('(0.4, "focused")', '(0.45, "focused")')),
    bug(
        "small count",
        "risk_band",
        "five positions are thin",
        ('book["positions"] < MIN_POSITIONS', 'book["positions"] <= MIN_POSITIONS'),
    ),
    bug(
        "threshold",
        "risk_band",
        "thin below 8 positions",
        ("MIN_POSITIONS = 5", "MIN_POSITIONS = 8"),
    ),
    # -- book/pnl_bucket
    bug("threshold", "pnl_bucket", "loss from -2.5%", ('(-2.0, "loss")', '(-2.5, "loss")')),
    bug(
        "rounding",
        "pnl_bucket",
        "whole percent",
        ("pct = round(100.0 * pnl / cost, 1)", "pct = round(100.0 * pnl / cost)"),
    ),
    bug(
        "formula",
        "pnl_bucket",
        "cost at today's close",
        (
            'cost += position["quantity"] * position["avg_cost"]',
            'cost += position["quantity"] * bar["close"]',
        ),
    ),
    # -- book/realized_day
    bug(
        "threshold",
        "realized_day",
        "big loser below -5000",
        ("BIG_LOSS = -1000.0", "BIG_LOSS = -5000.0"),
    ),
    bug(
        "formula",
        "realized_day",
        "hit rate over every trade",
        ('"hit_rate": round(wins / len(closed), 3)', '"hit_rate": round(wins / len(trades), 3)'),
    ),
    # -- book/equity_curve (historical)
    bug(
        "previous",
        "equity_curve",
        "peak from yesterday's worth",
        ('max(before["peak"], worth)', 'max(before["worth"], worth)'),
    ),
    bug(
        "previous",
        "equity_curve",
        "days below the peak never reset",
        (
            'before["days_below"] + 1 if worth < peak else 0',
            'before["days_below"] + 1 if worth < peak else before["days_below"]',
        ),
    ),
    bug(
        "previous",
        "equity_curve",
        "days below carried from the day count",
        ('before["days_below"] + 1 if worth < peak', 'before["days"] if worth < peak'),
    ),
    # -- book/loss_streak (historical)
    bug(
        "small count",
        "loss_streak",
        "alert after 4 days",
        ("streak >= ALERT_DAYS", "streak > ALERT_DAYS"),
    ),
    bug(
        "previous",
        "loss_streak",
        "longest from yesterday's streak",
        ('max(before["longest"], streak)', 'max(before["streak"], streak)'),
    ),
    bug(
        "previous",
        "loss_streak",
        "streak kept on a winning day",
        ('today["pct"] < 0 else 0', 'today["pct"] < 0 else before["streak"]'),
    ),
    # -- market/volume_surge (look-back)
    bug(
        "small count",
        "volume_surge",
        "three days are too few",
        ("len(history) < MIN_DAYS", "len(history) <= MIN_DAYS"),
    ),
    bug("look-back", "volume_surge", "six calendar days", ("range(1, 8)", "range(1, 7)")),
    bug("threshold", "volume_surge", "surge at 3x", ("SURGE = 2.5", "SURGE = 3.0")),
    # -- market/momentum (look-back)
    bug("look-back", "momentum", "four-day window", ("WINDOW = 5", "WINDOW = 4")),
    bug(
        "top-k",
        "momentum",
        "laggards worst first",
        (
            '"laggards": [symbol for symbol, _ in ranked[-TOP:]]',
            '"laggards": [symbol for symbol, _ in ranked[::-1][:TOP]]',
        ),
    ),
    # -- crowd/leaderboard (over many users)
    bug("top-k", "leaderboard", "top 5", ("TOP = 10", "TOP = 5")),
    bug(
        "percentile",
        "leaderboard",
        "p95 for p90",
        (
            '"p90": round(percentile(list(worth.values()), 90), 2)',
            '"p90": round(percentile(list(worth.values()), 95), 2)',
        ),
    ),
    bug("threshold", "leaderboard", "rich from 300k", ("RICH = 250_000.0", "RICH = 300_000.0")),
    Edit(
        "bug",
        "percentile",
        ("leaderboard",),
        LAYER,
        "percentile rounds the rank (layer)",
        (("low = int(rank)", "low = round(rank)"),),
    ),
    # -- crowd/band_mix
    bug(
        "formula",
        "band_mix",
        "mode is the rarest band",
        ("(-counts[name], name)", "(counts[name], name)"),
    ),
    # -- crowd/realized_total (historical)
    bug(
        "previous",
        "realized_total",
        "total from yesterday's day",
        ('round(before["total"] + pnl, 2)', 'round(before["today"] + pnl, 2)'),
    ),
    bug(
        "previous",
        "realized_total",
        "best from yesterday's day",
        ('max(before["best"], pnl)', 'max(before["today"], pnl)'),
    ),
    # -- margin/exposure (JSON Lines, shorts)
    bug(
        "shorts",
        "exposure",
        "short side subtracted",
        ("short_value -= value", "short_value += value"),
    ),
    bug(
        "shorts",
        "exposure",
        "gross is net",
        ("gross = long_value + short_value", "gross = abs(long_value - short_value)"),
    ),
    bug(
        "jsonl",
        "exposure",
        "cash left out of equity",
        ('equity = account["cash"] + net', "equity = net"),
    ),
    # -- margin/margin_call
    bug("threshold", "margin_call", "maintenance 30%", ("MAINTENANCE = 0.25", "MAINTENANCE = 0.3")),
    bug(
        "shorts",
        "margin_call",
        "surcharge on gross",
        ('SHORT_SURCHARGE * x["short"]', 'SHORT_SURCHARGE * x["gross"]'),
    ),
    bug("threshold", "margin_call", "warning band 20%", ("WARNING = 0.1", "WARNING = 0.2")),
    # -- margin/short_book
    bug("top-k", "short_book", "top 3", ("TOP = 5", "TOP = 3")),
    bug(
        "shorts",
        "short_book",
        "only net-short accounts",
        ('if x["short"] > 0}', 'if x["net"] < 0}'),
    ),
]

REFACTORS: list[Edit] = [
    # -- book/holdings
    refactor(
        "loop to comprehension",
        "holdings",
        "values as a dict comprehension",
        (
            """    values = {}
    for position in book["positions"]:
        bar = prices.get(position["symbol"])
        if bar is None or position["quantity"] <= 0:
            continue
        values[position["symbol"]] = position["quantity"] * bar["close"]
""",
            """    values = {
        p["symbol"]: p["quantity"] * prices[p["symbol"]]["close"]
        for p in book["positions"]
        if p["symbol"] in prices and p["quantity"] > 0
    }
""",
        ),
    ),
    refactor(
        "extracted helper",
        "holdings",
        "concentration helper",
        (
            "def holdings(ctx):",
            """def concentration(values, total):
    if total <= 0:
        return 0.0, 0.0
    weights = [value / total for value in values]
    return sum(w * w for w in weights), max(weights)


def holdings(ctx):""",
        ),
        (
            """    if invested > 0:
        weights = [value / invested for value in values.values()]
        hhi = sum(w * w for w in weights)
        largest = max(weights)
    else:
        hhi = largest = 0.0
""",
            "    hhi, largest = concentration(list(values.values()), invested)\n",
        ),
    ),
    # -- book/risk_band
    refactor(
        "equivalent arithmetic",
        "risk_band",
        "int(thin)",
        ("score = SCORES[label] + (1 if thin else 0)", "score = int(thin) + SCORES[label]"),
    ),
    refactor(
        "reordered statements",
        "risk_band",
        "thin before the band",
        (
            """    label = band(book["hhi"], HHI_BANDS, "concentrated")
    thin = book["positions"] < MIN_POSITIONS
""",
            """    thin = MIN_POSITIONS > book["positions"]
    label = band(book["hhi"], HHI_BANDS, "concentrated")
""",
        ),
    ),
    # -- book/pnl_bucket
    refactor(
        "equivalent arithmetic",
        "pnl_bucket",
        "pnl as value minus cost",
        (
            """            cost += position["quantity"] * position["avg_cost"]
            pnl += position["quantity"] * (bar["close"] - position["avg_cost"])
""",
            """            paid = position["quantity"] * position["avg_cost"]
            cost += paid
            pnl += position["quantity"] * bar["close"] - paid
""",
        ),
    ),
    refactor(
        "comprehension to loop",
        "pnl_bucket",
        "bucket by a loop",
        (
            '        bucket = next((label for edge, label in BUCKETS if pct < edge), "big_gain")\n',
            """        bucket = "big_gain"
        for edge, label in BUCKETS:
            if pct < edge:
                bucket = label
                break
""",
        ),
    ),
    refactor(
        "extracted helper",
        "pnl_bucket",
        "positions summed by a module function",
        (
            "class PnlBucket:",
            """def cost_and_pnl(positions, prices):
    cost = pnl = 0.0
    for position in positions:
        bar = prices.get(position["symbol"])
        if bar is not None and position["quantity"] > 0:
            cost += position["quantity"] * position["avg_cost"]
            pnl += position["quantity"] * (bar["close"] - position["avg_cost"])
    return cost, pnl


class PnlBucket:""",
        ),
        (
            """        cost = 0.0
        pnl = 0.0
        for position in ctx.user["portfolio"]["positions"]:
            bar = prices.get(position["symbol"])
            if bar is None or position["quantity"] <= 0:
                continue
            cost += position["quantity"] * position["avg_cost"]
            pnl += position["quantity"] * (bar["close"] - position["avg_cost"])
""",
            '        cost, pnl = cost_and_pnl(ctx.user["portfolio"]["positions"], prices)\n',
        ),
    ),
    # -- book/realized_day
    refactor(
        "one pass",
        "realized_day",
        "counters in one loop",
        (
            """    pnl = [t["realized_pnl"] for t in closed]
    wins = sum(1 for p in pnl if p > 0)
""",
            """    pnl = []
    wins = 0
    for trade in closed:
        pnl.append(trade["realized_pnl"])
        if trade["realized_pnl"] > 0:
            wins += 1
""",
        ),
    ),
    refactor(
        "library call",
        "realized_day",
        "statistics.fmean of holding days",
        ('"""Today\'s closed trades', 'import statistics\n\n"""Today\'s closed trades'),
        (
            '"avg_days": round(sum(t["holding_days"] for t in closed) / len(closed), 1)',
            '"avg_days": round(statistics.fmean(t["holding_days"] for t in closed), 1)',
        ),
    ),
    # -- book/equity_curve
    refactor(
        "default state",
        "equity_curve",
        "first day through a default previous",
        (
            """    before = ctx.previous
    if before is None:
        return {"peak": worth, "worth": worth, "drawdown": 0.0, "days_below": 0, "days": 1}
""",
            """    before = ctx.previous or {"peak": worth, "days_below": 0, "days": 0}
""",
        ),
    ),
    refactor(
        "inverted condition",
        "equity_curve",
        "reset first",
        (
            'days_below = before["days_below"] + 1 if worth < peak else 0',
            'days_below = 0 if worth >= peak else before["days_below"] + 1',
        ),
    ),
    # -- book/loss_streak
    refactor(
        "inverted condition",
        "loss_streak",
        "alert as not below",
        ('"alert": streak >= ALERT_DAYS', '"alert": not streak < ALERT_DAYS'),
    ),
    refactor(
        "branches",
        "loss_streak",
        "streak by an if statement",
        (
            '    streak = before["streak"] + 1 if today["pct"] < 0 else 0\n',
            """    streak = 0
    if today["pct"] < 0:
        streak = before["streak"] + 1
""",
        ),
    ),
    # -- market/volume_surge
    refactor(
        "library call",
        "volume_surge",
        "filter(None)",
        ("history = [day for day in history if day]", "history = list(filter(None, history))"),
    ),
    refactor(
        "extracted helper",
        "volume_surge",
        "surge test in a helper",
        (
            "def volume_surge(ctx):",
            """def surges(volume, volumes):
    if not volumes:
        return False
    average = sum(volumes) / len(volumes)
    return average > 0 and volume / average > SURGE


def volume_surge(ctx):""",
        ),
        (
            """    surging = []
    for symbol, bar in today.items():
        volumes = [day[symbol]["volume"] for day in history if symbol in day]
        if not volumes:
            continue
        average = sum(volumes) / len(volumes)
        if average > 0 and bar["volume"] / average > SURGE:
            surging.append(symbol)
""",
            """    surging = [
        symbol
        for symbol, bar in today.items()
        if surges(bar["volume"], [day[symbol]["volume"] for day in history if symbol in day])
    ]
""",
        ),
    ),
    # -- market/momentum
    refactor(
        "loop to comprehension",
        "momentum",
        "trading days as a list",
        (
            """    past = None
    seen = 0
    for back in range(1, 10):
        day = ctx.root("prices", days_ago=back)
        if day:
            seen += 1
            if seen == WINDOW:
                past = day
                break
""",
            """    days = [ctx.root("prices", days_ago=back) for back in range(1, 10)]
    days = [day for day in days if day]
    past = days[WINDOW - 1] if len(days) >= WINDOW else None
""",
        ),
    ),
    refactor(
        "library call",
        "momentum",
        "heapq for the leaders",
        ('"""Five-trading-day momentum', 'import heapq\n\n"""Five-trading-day momentum'),
        (
            '"leaders": [symbol for symbol, _ in ranked[:TOP]]',
            '"leaders": [s for s, _ in heapq.nsmallest(TOP, moves.items(), key=lambda i: (-i[1], i[0]))]',
        ),
    ),
    # -- crowd/leaderboard
    refactor(
        "reordered statements",
        "leaderboard",
        "values listed once",
        (
            """    ranked = sorted(worth.items(), key=lambda item: (-item[1], item[0]))
""",
            """    values = list(worth.values())
    ranked = sorted(worth.items(), key=lambda item: (-item[1], item[0]))
""",
        ),
        ("round(percentile(list(worth.values()), 90), 2)", "round(percentile(values, 90), 2)"),
        ("round(percentile(list(worth.values()), 50), 2)", "round(percentile(values, 50), 2)"),
        ("for value in worth.values() if value >= RICH", "for value in values if value >= RICH"),
    ),
    refactor(
        "sort key",
        "leaderboard",
        "users sorted by a key on the dict",
        (
            "ranked = sorted(worth.items(), key=lambda item: (-item[1], item[0]))",
            "ranked = sorted(worth, key=lambda user: (-worth[user], user))",
        ),
        ('"top": [user for user, _ in ranked[:TOP]]', '"top": ranked[:TOP]'),
    ),
    # -- crowd/band_mix
    refactor(
        "library call",
        "band_mix",
        "collections.Counter",
        ('"""Share of users', 'from collections import Counter\n\n"""Share of users'),
        (
            """    counts = {}
    for value in bands.values():
        counts[value["band"]] = counts.get(value["band"], 0) + 1
""",
            '    counts = Counter(value["band"] for value in bands.values())\n',
        ),
    ),
    refactor(
        "sort key",
        "band_mix",
        "mode from a sorted list",
        (
            '"mode": min(counts, key=lambda name: (-counts[name], name))',
            '"mode": sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]',
        ),
    ),
    # -- crowd/realized_total
    refactor(
        "default state",
        "realized_total",
        "one return with a default previous",
        (
            """    before = ctx.previous
    if before is None:
        return {"total": pnl, "days": 1, "best": pnl, "today": pnl, "traders": len(today)}
    return {
        "total": round(before["total"] + pnl, 2),
        "days": before["days"] + 1,
        "best": max(before["best"], pnl),
""",
            # "total": 0, not 0.0: a first day without traders has pnl 0 (an int), stored as such
            """    before = ctx.previous or {"total": 0, "days": 0, "best": pnl}
    return {
        "total": round(before["total"] + pnl, 2),
        "days": before["days"] + 1,
        "best": max(before["best"], pnl),
""",
        ),
    ),
    # -- margin/exposure
    refactor(
        "equivalent comparison",
        "exposure",
        "zero goes short",
        ("if value >= 0:", "if value > 0:"),
    ),
    refactor(
        "equivalent arithmetic",
        "exposure",
        "short side with abs",
        ("short_value -= value", "short_value += abs(value)"),
    ),
    refactor(
        "reordered statements",
        "exposure",
        "gross first",
        (
            """    net = long_value - short_value
    equity = account["cash"] + net
    gross = long_value + short_value
""",
            """    gross = long_value + short_value
    net = long_value - short_value
    equity = net + account["cash"]
""",
        ),
    ),
    # -- margin/margin_call
    refactor(
        "layer call",
        "margin_call",
        "levels through the band layer",
        ('"""Margin check', 'from corpuslib.bands import band\n\n"""Margin check'),
        (
            """    if excess < 0:
        level = "call"
    elif excess < WARNING * required:
        level = "warning"
    else:
        level = "ok"
""",
            '    level = band(excess, [(0, "call"), (WARNING * required, "warning")], "ok")\n',
        ),
    ),
    # -- margin/short_book
    refactor(
        "comprehension to loop",
        "short_book",
        "one loop over accounts",
        (
            """    shorts = {user: x["short"] for user, x in accounts.items() if x["short"] > 0}
""",
            """    shorts = {}
    net_short = 0
    for user, x in accounts.items():
        if x["short"] > 0:
            shorts[user] = x["short"]
        if x["net"] < 0:
            net_short += 1
""",
        ),
        (
            '"net_short": sum(1 for x in accounts.values() if x["net"] < 0)',
            '"net_short": net_short',
        ),
    ),
]
