"""Risk geometry: convex hull and efficient frontier of (risk, return) points.

Points are ``(risk, return)`` pairs. The hull is built with Andrew's monotone chain
(O(n log n)); the efficient frontier is the part of its upper chain running from the
least-risky point with the best return up to the highest-return point — the points no other
point beats on both risk and return among hull vertices.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import pairwise

Point = tuple[float, float]


def cross(o: Point, a: Point, b: Point) -> float:
    """Z component of ``(a - o) x (b - o)``: > 0 for a counter-clockwise turn."""
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def _chains(points: Iterable[Point]) -> tuple[list[Point], list[Point], list[Point]]:
    ordered = sorted({(float(x), float(y)) for x, y in points})
    lower: list[Point] = []
    for p in ordered:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    upper: list[Point] = []
    for p in reversed(ordered):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return ordered, lower, upper


def convex_hull(points: Iterable[Point]) -> list[Point]:
    """Hull vertices counter-clockwise from the lowest-risk (then lowest-return) point.

    Duplicates and collinear points on an edge are dropped; fewer than three distinct points
    come back as they are (sorted).
    """
    ordered, lower, upper = _chains(points)
    if len(ordered) < 3:
        return ordered
    return lower[:-1] + upper[:-1]  # all collinear: just the two end points


def efficient_frontier(points: Iterable[Point]) -> list[Point]:
    """Hull vertices on the efficient frontier, by increasing risk (and increasing return)."""
    ordered, _, upper = _chains(points)
    if len(ordered) < 2:
        return ordered
    chain = list(reversed(upper))  # left to right along the top of the hull
    while len(chain) >= 2 and chain[1][0] == chain[0][0]:
        chain.pop(0)  # same risk, better return: the lower point is dominated
    best = max(range(len(chain)), key=lambda i: (chain[i][1], -i))
    return chain[: best + 1]


def polygon_area(polygon: Sequence[Point]) -> float:
    """Area of a simple polygon (shoelace formula); 0 for fewer than three vertices."""
    if len(polygon) < 3:
        return 0.0
    twice = 0.0
    for (x1, y1), (x2, y2) in pairwise([*polygon, polygon[0]]):
        twice += x1 * y2 - x2 * y1
    return abs(twice) / 2.0


def hull_contains(hull: Sequence[Point], point: Point, tolerance: float = 1e-9) -> bool:
    """Whether ``point`` lies inside or on a counter-clockwise convex ``hull``."""
    if not hull:
        return False
    if len(hull) == 1:
        return abs(hull[0][0] - point[0]) <= tolerance and abs(hull[0][1] - point[1]) <= tolerance
    if len(hull) == 2:
        (ax, ay), (bx, by) = hull
        if abs(cross(hull[0], hull[1], point)) > tolerance * max(1.0, abs(bx - ax) + abs(by - ay)):
            return False
        return (
            min(ax, bx) - tolerance <= point[0] <= max(ax, bx) + tolerance
            and min(ay, by) - tolerance <= point[1] <= max(ay, by) + tolerance
        )
    return all(
        cross(a, b, point) >= -tolerance * max(1.0, abs(b[0] - a[0]) + abs(b[1] - a[1]))
        for a, b in pairwise([*hull, hull[0]])
    )
