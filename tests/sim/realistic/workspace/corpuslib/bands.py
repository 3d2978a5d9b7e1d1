"""Banding: map a number onto the label of the table row it falls in."""


def band(value, edges, top):
    """The label of the first ``(edge, label)`` row with ``value`` below ``edge``, else ``top``."""
    for edge, label in edges:
        if value < edge:
            return label
    return top


def percentile(values, q):
    """The ``q``-th percentile (0-100) with linear interpolation; None for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = (len(ordered) - 1) * q / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)
