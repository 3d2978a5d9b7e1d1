"""Hand-written edits of the corpus calculations (tests/sim/corpus/calculations/c/).

Each edit is ``(target, description, [(old text, new text), ...])``. REFACTORS change the code
hash but not the behaviour (verify must say ``cosmetic``); BUGS change the behaviour on some
realistic input (verify must say ``behaviour_changed`` with a counterexample).
"""

from __future__ import annotations

Edit = tuple[str, str, list[tuple[str, str]]]

REFACTORS: list[Edit] = [
    (
        "market_value",
        "sum() over a generator instead of a loop; cash + invested",
        [
            (
                """    invested = 0.0
    for position in book["positions"]:
        bar = prices.get(position["symbol"])
        if bar is None:
            continue
        invested += position["quantity"] * bar["close"]
""",
                """    invested = sum(
        (prices[p["symbol"]]["close"] * p["quantity"] for p in book["positions"] if p["symbol"] in prices),
        0.0,
    )
""",
            ),
            ('round(invested + book["cash"], 2)', 'round(book["cash"] + invested, 2)'),
        ],
    ),
    (
        "unrealized_pnl",
        "helper function, early return, class turned into two methods",
        [
            (
                """        pct = pnl / basis * 100.0 if basis > 0 else 0.0
        return {"pnl": round(pnl, 2), "pct": round(pct, 4)}""",
                """        return {"pnl": round(pnl, 2), "pct": round(self._share(pnl, basis), 4)}

    @staticmethod
    def _share(part, whole):
        if whole <= 0:
            return 0.0
        return 100.0 * part / whole""",
            ),
            ('(bar["close"] - position["avg_cost"])', '(bar["close"] - position["avg_cost"]) * 1'),
        ],
    ),
    (
        "concentration",
        "weights via a comprehension and ** 2; max over a dict",
        [
            (
                "    weights = [value / total for value in values.values()]\n"
                '    return {"hhi": round(sum(w * w for w in weights), 6), "largest": round(max(weights), 6)}',
                "    shares = {s: v / total for s, v in values.items()}\n"
                '    return {"largest": round(max(shares.values()), 6), "hhi": round(sum(x ** 2 for x in shares.values()), 6)}',
            )
        ],
    ),
    (
        "realized",
        "one pass with counters instead of three comprehensions",
        [
            (
                """    wins = sum(1 for t in closed if t["realized_pnl"] > 0)
    losses = sum(1 for t in closed if t["realized_pnl"] < 0)
    total = sum(t["realized_pnl"] for t in closed)
""",
                """    wins = losses = 0
    total = 0.0
    for trade in closed:
        amount = trade["realized_pnl"]
        total += amount
        if amount > 0:
            wins += 1
        elif amount < 0:
            losses += 1
""",
            )
        ],
    ),
    (
        "turnover",
        "history summed in a loop, renamed helper",
        [
            ("def notional(trades):", "def traded_notional(trades):"),
            ("today = notional(", "today = traded_notional("),
            (
                """    history = [notional(ctx.user.get("trades", days_ago=back)) for back in range(1, DAYS + 1)]
    average = sum(history) / DAYS""",
                """    total = 0.0
    for back in range(1, DAYS + 1):  # sum()'s order: outputs are compared exactly
        total += traded_notional(ctx.user.get("trades", days_ago=back))
    average = total / DAYS""",
            ),
        ],
    ),
    (
        "daily_move",
        "dict comprehension over a filtered generator",
        [
            (
                """    moves = {}
    for symbol, bar in today.items():
        previous = before.get(symbol)
        if previous is None or previous["close"] <= 0:
            continue
        moves[symbol] = round(bar["close"] / previous["close"] - 1.0, 8)
    return moves""",
                """    usable = ((s, bar, before.get(s)) for s, bar in today.items())
    return {s: round(bar["close"] / prev["close"] - 1.0, 8)
            for s, bar, prev in usable if prev is not None and not prev["close"] <= 0}""",
            )
        ],
    ),
    (
        "breadth",
        "counting with a list of signs",
        [
            (
                """    up = sum(1 for move in moves.values() if move > 0)
    down = sum(1 for move in moves.values() if move < 0)""",
                """    signs = [(move > 0) - (move < 0) for move in moves.values()]
    up, down = signs.count(1), signs.count(-1)""",
            )
        ],
    ),
    (
        "sentiment_score",
        "statistics.fmean-free rewrite with explicit branches",
        [
            (
                """    label = "bullish" if mood > 0.2 else "bearish" if mood < -0.2 else "neutral\"""",
                """    if mood > 0.2:
        label = "bullish"
    elif mood < -0.2:
        label = "bearish"
    else:
        label = "neutral\"""",
            )
        ],
    ),
    (
        "top_holders",
        "heapq.nsmallest instead of sorted()[:3]",
        [
            (
                '"""The three largest users by worth and the population\'s total worth."""\n',
                '"""The three largest users by worth and the population\'s total worth."""\n\nimport heapq\n',
            ),
            (
                '    ranked = sorted(values.items(), key=lambda item: (-item[1]["worth"], item[0]))\n',
                '    ranked = heapq.nsmallest(TOP, values.items(), key=lambda item: (-item[1]["worth"], item[0]))\n',
            ),
        ],
    ),
    (
        "drawdown_alert",
        "guard clauses merged, comparison flipped",
        [('"alert": drop > THRESHOLD', '"alert": THRESHOLD < drop')],
    ),
    (
        "sector_exposure",
        "collections.defaultdict",
        [
            (
                '"""A user\'s invested value per sector, as shares of the invested total."""\n',
                '"""A user\'s invested value per sector, as shares of the invested total."""\n\nfrom collections import defaultdict\n',
            ),
            ("    by_sector = {}\n", "    by_sector = defaultdict(float)\n"),
            (
                'by_sector[bar["sector"]] = by_sector.get(bar["sector"], 0.0) + value',
                'by_sector[bar["sector"]] += value',
            ),
        ],
    ),
]

BUGS: list[Edit] = [
    (
        "turnover",
        "history summed in reverse order: a re-associated sum's last bit (a clean build stores it)",
        [
            (
                """    history = [notional(ctx.user.get("trades", days_ago=back)) for back in range(1, DAYS + 1)]
    average = sum(history) / DAYS""",
                """    total = 0.0
    for back in range(DAYS, 0, -1):
        total += notional(ctx.user.get("trades", days_ago=back))
    average = total / DAYS""",
            ),
        ],
    ),
    ("market_value", "forgets cash", [('round(invested + book["cash"], 2)', "round(invested, 2)")]),
    ("market_value", "values positions at the open", [('bar["close"]', 'bar["open"]')]),
    (
        "unrealized_pnl",
        "marks to the day's high",
        [('(bar["close"] - position', '(bar["high"] - position')],
    ),
    (
        "unrealized_pnl",
        "percentage of the wrong base",
        [("pnl / basis * 100.0", "pnl / (basis + pnl) * 100.0")],
    ),
    ("concentration", "largest weight is the smallest", [("max(weights)", "min(weights)")]),
    (
        "realized",
        "break-even trades count as losses",
        [('t["realized_pnl"] < 0', 't["realized_pnl"] <= 0')],
    ),
    ("turnover", "averages over two days", [("sum(history) / DAYS", "sum(history[:2]) / DAYS")]),
    (
        "daily_move",
        "zero previous close not skipped",
        [('previous["close"] <= 0', 'previous["close"] < 0')],
    ),
    ("breadth", "ratio inverted", [("up / down if down", "down / up if up")]),
    ("sentiment_score", "bullish threshold off", [("mood > 0.2", "mood >= 0.1")]),
    (
        "top_holders",
        "ties broken by reverse user id",
        [('(-item[1]["worth"], item[0])', '(-item[1]["worth"], item[0][::-1])')],
    ),
    (
        "drawdown_alert",
        "missing previous day raises",
        [
            (
                '    if before is None:\n        return {"pct": today["pct"], "alert": False, "drop": 0.0}\n',
                "",
            )
        ],
    ),
    ("sector_exposure", "all-zero portfolio returns None", [("return {}", "return None")]),
]
