"""Risk band of a book: a table of concentration (HHI) bands; books with few positions are thin."""

from corpuslib.bands import band

HHI_BANDS = [(0.15, "diversified"), (0.25, "balanced"), (0.4, "focused")]
MIN_POSITIONS = 5
SCORES = {"diversified": 1, "balanced": 2, "focused": 3, "concentrated": 4}


def risk_band(ctx):
    book = ctx.dep("holdings")
    if book is None:
        return None
    if book["positions"] == 0:
        return {"band": "cash", "thin": False, "score": 0}
    label = band(book["hhi"], HHI_BANDS, "concentrated")
    thin = book["positions"] < MIN_POSITIONS
    score = SCORES[label] + (1 if thin else 0)
    return {"band": label, "thin": thin, "score": score}
