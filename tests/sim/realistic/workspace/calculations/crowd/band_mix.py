"""Share of users in each risk band, the thin books among them and the most common band."""


def band_mix(ctx):
    bands = ctx.dep("risk_band") or {}
    if not bands:
        return None
    counts = {}
    for value in bands.values():
        counts[value["band"]] = counts.get(value["band"], 0) + 1
    total = len(bands)
    return {
        "users": total,
        "shares": {name: round(count / total, 4) for name, count in sorted(counts.items())},
        "thin": sum(1 for value in bands.values() if value["thin"]),
        "mode": min(counts, key=lambda name: (-counts[name], name)),
    }
