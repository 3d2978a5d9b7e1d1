"""Average analyst sentiment and the share of buy ratings (None on days without insights)."""


def sentiment_score(ctx):
    insights = ctx.root("insights")
    if not insights:
        return None
    sentiments = [item["sentiment"] for item in insights.values()]
    buys = sum(1 for item in insights.values() if item["rating"] == "buy")
    mood = sum(sentiments) / len(sentiments)
    label = "bullish" if mood > 0.2 else "bearish" if mood < -0.2 else "neutral"
    return {"mood": round(mood, 6), "buy_share": round(buys / len(insights), 6), "label": label}
