"""Real root data, sampled through the sources, for the worlds derived from it.

Fabricated values alone miss realistic states (diversified portfolios, mid-range ratios,
typical counts). A few worlds therefore start from the workspace's own data: the first
available days from the workspace's ``start_date`` (old days change least, so the sample -
and the SimHashes computed on it - stay stable), their date-level values and the first users
of each user-level source, perturbed by the fabricator. The fingerprints of the sampled days
are part of the fabricator's version (:attr:`RealSample.key`): when that data is re-ingested,
SimHashes registered on the old sample are simply not found (the cell re-runs).

Sampling is best effort and bounded: ``PROBE_DAYS`` probes of ``available()``, at most
``SAMPLE_DAYS`` days and ``SAMPLE_USERS`` users a day. A source that fails (unreachable
cloud store, bad file) contributes nothing, and :attr:`RealSample.notes` says so.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from btbuild.hashing.digest import hash_json

PROBE_DAYS = 60
SAMPLE_DAYS = 4
SAMPLE_USERS = 48
HISTORY = 2  # look-back days read for real; deeper ones are random walks of the last real one


class RealSample:
    def __init__(self, sources: Mapping[str, Any], start: date | None):
        self.sources = dict(sources)
        self.start = start
        self.notes: list[str] = []
        self._days: list[date] | None = None
        self._dates: dict[tuple[str, date], Any] = {}
        self._users: dict[tuple[str, date], dict[str, Any]] = {}
        self._fingerprints: dict[str, str] = {}

    def days(self) -> list[date]:
        """Days on which every source has data (the first ones from ``start``)."""
        if self._days is None:
            self._days = self._probe()
        return self._days

    def _probe(self) -> list[date]:
        if self.start is None or not self.sources:
            return []
        found: list[date] = []
        try:
            for offset in range(PROBE_DAYS):
                day = self.start + timedelta(days=offset)
                if all(source.available(day) for source in self.sources.values()):
                    found.append(day)
                    for name, source in sorted(self.sources.items()):
                        self._fingerprints[f"{name}@{day.isoformat()}"] = source.fingerprint(day)
                    if len(found) == SAMPLE_DAYS:
                        break
        except Exception as exc:  # a source that cannot answer: no real worlds
            self.notes.append(f"real data not sampled: {type(exc).__name__}: {exc}")
            self._fingerprints.clear()
            return []
        if not found:
            self.notes.append(
                f"real data not sampled: no day in the {PROBE_DAYS} days from "
                f"{self.start.isoformat()} has data in every source"
            )
        return found

    @property
    def key(self) -> str:
        """What the sample depends on: part of the fabricator version."""
        self.days()
        return hash_json(sorted(self._fingerprints.items()))

    def missing_days(self, day: date, depth: int) -> frozenset[int]:
        """Days ago (1..depth) on which some source has no data."""
        missing = set()
        try:
            for back in range(1, depth + 1):
                earlier = day - timedelta(days=back)
                if not all(source.available(earlier) for source in self.sources.values()):
                    missing.add(back)
        except Exception as exc:
            self.notes.append(f"real data availability not read: {exc}")
        return frozenset(missing)

    def users(self, day: date) -> tuple[str, ...]:
        """The sampled users of ``day``: the first ones of each user-level source."""
        ids: set[str] = set()
        for name, source in sorted(self.sources.items()):
            if source.scope == "user":
                ids.update(self._user_records(name, day))
        return tuple(sorted(ids))[:SAMPLE_USERS]

    def date_value(self, source: str, day: date) -> Any:
        """``source``'s date-level value on ``day`` (None when it has none or cannot load)."""
        key = (source, day)
        if key not in self._dates:
            self._dates[key] = self._safe(source, lambda: self.sources[source].load(day), day)
        return self._dates[key]

    def user_value(self, source: str, day: date, user: str) -> Any:
        return self._user_records(source, day).get(user)

    def _user_records(self, source: str, day: date) -> dict[str, Any]:
        key = (source, day)
        if key not in self._users:

            def read() -> dict[str, Any]:
                stream = self.sources[source].users(day)
                return dict(itertools.islice(stream, SAMPLE_USERS))

            self._users[key] = self._safe(source, read, day) or {}
        return self._users[key]

    def _safe(self, source: str, read: Any, day: date) -> Any:
        try:
            if not self.sources[source].available(day):
                return None
            return read()
        except Exception as exc:
            self.notes.append(f"real data for {day.isoformat()} not read: {exc}")
            return None


__all__ = ["RealSample"]
