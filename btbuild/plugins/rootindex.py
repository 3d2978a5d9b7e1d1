"""Availability and fingerprints of every (root source, date), computed once per build."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date

from btbuild.errors import BtbuildError, ConfigError, PluginError
from btbuild.plugins.sources import RootSource


class RootIndex:
    """Answers "is source S available on D, and with which fingerprint?" cheaply, many times.

    :meth:`build` asks every source once per date up front; a (source, date) outside the
    indexed range (a lookback before the first date) is asked on first use and remembered.
    An unavailable date has fingerprint ``None``.
    """

    def __init__(self, sources: Mapping[str, RootSource]):
        self.sources = dict(sources)
        self._fingerprints: dict[tuple[str, date], str | None] = {}

    @classmethod
    def build(cls, sources: Mapping[str, RootSource], dates: Iterable[date]) -> RootIndex:
        index = cls(sources)
        days = list(dates)
        for name in sorted(index.sources):
            for day in days:
                index.fingerprint(name, day)
        return index

    def fingerprint(self, source: str, day: date) -> str | None:
        """``day``'s fingerprint of ``source``, or None when it has no data that day."""
        key = (source, day)
        try:
            return self._fingerprints[key]
        except KeyError:
            pass
        root = self._source(source)
        try:
            value = root.fingerprint(day) if root.available(day) else None
        except BtbuildError:
            raise
        except Exception as exc:
            raise PluginError(
                f"root source {source!r} failed on {day.isoformat()}: {type(exc).__name__}: {exc}"
            ) from None
        if value is not None and not isinstance(value, str):
            raise PluginError(
                f"root source {source!r}: fingerprint({day.isoformat()}) returned {value!r}, expected a str"
            )
        self._fingerprints[key] = value
        return value

    def available(self, source: str, day: date) -> bool:
        return self.fingerprint(source, day) is not None

    def missing(self, sources: Iterable[str], day: date) -> tuple[str, ...]:
        """The names among ``sources`` with no data on ``day``, sorted."""
        return tuple(sorted({name for name in sources if self.fingerprint(name, day) is None}))

    def fingerprints(self, sources: Iterable[str], day: date) -> dict[str, str | None]:
        """``{name: fingerprint or None}`` for ``sources`` on ``day``, sorted by name."""
        return {name: self.fingerprint(name, day) for name in sorted(set(sources))}

    def _source(self, name: str) -> RootSource:
        try:
            return self.sources[name]
        except KeyError:
            known = (
                ", ".join(sorted(self.sources))
                or "none: add a source plugin to [workspace] plugins"
            )
            raise ConfigError(f"unknown root source {name!r} (known: {known})") from None
