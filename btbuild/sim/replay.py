"""Replay: the new code on the real inputs of stored cells, compared with what is stored.

A cosmetic verdict claims that every stored result a build keeps is what the new code would
produce. The most direct evidence is to ask: before any cell of a target is skipped as
cosmetic, a deterministic sample of exactly those cells (stored results made by the old code,
whose inputs are still the current ones) is recomputed with the new code from the real
inputs - root data read from the sources, dep results and ``previous`` read from the cache -
and the canonical outputs (:mod:`btbuild.sim.canonical`) are compared with the stored ones.

The sample (sizes from the root BUILD.toml's ``[sim]`` table):

* dates: the asked date first (``explain``), then the newest and the oldest stored cell, the
  first day of each historical chain (no ``previous``), then random dates between, drawn
  from ``random.Random`` seeded with ``[sim] seed``, the target and the old code - so the
  same build picks the same cells on every machine;
* users of a per_user cell: every user when the stored result has at most
  ``replay_users``, else the users of one hash part (the same xxhash part function as
  ``[execution] user_shards``), the part picked per date from the same seed.

A sampled cell whose inputs are no longer the recorded ones (root data re-ingested, a dep or
the previous day re-ran with another result) is not replayable: the build would re-run it
anyway. It is passed over, and the next one in the order is taken. So is one whose stored
result or inputs another builder replaces while it is replayed (every read expects the hash
the cell recorded): comparing the new code with another builder's result of the same new code
would prove nothing about the old one.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from btbuild.analysis.cells import PREVIOUS, date_range, root_fingerprints
from btbuild.errors import DamagedResult, ResultMovedOn
from btbuild.execution.loader import CalculationLoader
from btbuild.hashing.digest import hash_json
from btbuild.sim.logs import LogCapture
from btbuild.sim.replay_cell import CellReplay, replay_cell
from btbuild.storage.records import IMPOSSIBLE, CellRecord
from btbuild.workspace.model import DAILY, SimSettings, Target, Workspace

MAX_PASSED_OVER = 20  # sampled cells that are not replayable before giving up on more


@dataclass(frozen=True)
class ReplayResult:
    """What replaying a target's stored cells showed."""

    stored: int  # stored cells made by the old code (the candidates)
    replayed: tuple[str, ...] = ()  # ISO dates replayed, in sample order
    contexts: int = 0  # (date, user) contexts compared
    counterexample: dict[str, Any] | None = None
    passed_over: tuple[str, ...] = ()  # sampled dates whose inputs changed since
    samples: tuple[str, ...] = field(default=(), compare=False)  # why each date was sampled
    limited: str = ""  # why the replay proves nothing (a replayed call timed out...), or ""
    # (target, ISO date, generation, problem) of each damaged result met (passed over too):
    # never evidence; a real build forgets them (btbuild/cli/deferred_judge.py)
    damaged: tuple[tuple[str, str, str | None, str], ...] = ()

    @property
    def matched(self) -> bool:
        """At least one stored cell was replayed, and every replayed output matched."""
        return bool(self.replayed) and self.counterexample is None and not self.limited

    def to_json(self) -> dict[str, Any]:
        return {
            "stored_cells": self.stored,
            "replayed": list(self.replayed),
            "contexts": self.contexts,
            "passed_over": list(self.passed_over),
            "damaged": [
                {"target": target, "date": day, "generation": generation, "problem": problem}
                for target, day, generation, problem in self.damaged
            ],
            "counterexample": self.counterexample,
            "limited": self.limited or None,
        }


class Replayer:
    """Replays stored cells of one workspace's targets with their current code."""

    def __init__(
        self,
        workspace: Workspace,
        sources: dict[str, Any],
        backend: Any,
        *,
        settings: SimSettings | None = None,
        loader: CalculationLoader | None = None,
        logs: LogCapture | None = None,
    ):
        self.workspace = workspace
        self.sources = sources
        self.backend = backend
        self.settings = settings or workspace.sim
        self._loader = loader
        self.logs = logs or LogCapture("replay")
        self.by_label = workspace.by_label()
        self._fingerprints: dict[tuple[str, date], str | None] = {}
        self.trace: Callable[[], AbstractContextManager[Any]] | None = None  # see replay()

    @property
    def loader(self) -> CalculationLoader:
        if self._loader is None:
            self._loader = CalculationLoader(self.workspace)
        return self._loader

    def replay(
        self,
        target: Target,
        keep: Callable[[CellRecord], bool],
        first: date,
        last: date,
        *,
        prefer: date | None = None,
        seed_key: str = "",
        trace: Callable[[], AbstractContextManager[Any]] | None = None,
    ) -> ReplayResult:
        """Replay, with the current code, the sample of ``target``'s stored cells in
        ``first..last`` that ``keep`` selects (e.g. those the old code made); ``trace``: a
        block each replayed call runs in (the coverage check's tracer)."""
        self.trace = trace
        try:
            return self._replay(target, keep, first, last, prefer, seed_key)
        finally:
            self.trace = None

    def _replay(
        self,
        target: Target,
        keep: Callable[[CellRecord], bool],
        first: date,
        last: date,
        prefer: date | None,
        seed_key: str,
    ) -> ReplayResult:
        isos = [day.isoformat() for day in date_range(first, last)] if first <= last else []
        records = self.backend.get_cells([target.name], isos) if isos else {}
        stored = sorted(
            (record for record in records.values() if record.has_result and keep(record)),
            key=lambda record: record.date,
        )
        if not stored:
            return ReplayResult(0)
        process = self.loader.factory(target)
        replayed: list[str] = []
        passed: list[str] = []
        whys: list[str] = []
        damaged: list[tuple[str, str, str | None, str]] = []
        contexts = 0
        for record, why in self.sample_order(target, stored, seed_key, prefer):
            if len(replayed) >= self.settings.replay_dates or len(passed) >= MAX_PASSED_OVER:
                break
            day = date.fromisoformat(record.date)
            inputs = self.current_inputs(target, day, record)
            outcome = None if inputs is None else self._one(record, inputs, process, why, damaged)
            if outcome is None:  # its inputs changed since: the build re-runs it anyway
                passed.append(record.date)
                continue
            replayed.append(record.date)
            whys.append(why)
            contexts += outcome.contexts
            if outcome.counterexample is not None or outcome.limited:
                return ReplayResult(
                    len(stored),
                    tuple(replayed),
                    contexts,
                    outcome.counterexample,
                    tuple(passed),
                    limited=outcome.limited,
                    damaged=tuple(damaged),
                )
        return ReplayResult(
            len(stored),
            tuple(replayed),
            contexts,
            None,
            tuple(passed),
            tuple(whys),
            damaged=tuple(damaged),
        )

    def _one(
        self,
        record: CellRecord,
        inputs: CellInputsNow,
        process: Any,
        why: str,
        damaged: list[tuple[str, str, str | None, str]],
    ) -> CellReplay | None:
        """The replay of one sampled cell, or None when it proves nothing either way: it or
        an input was replaced by another builder meanwhile (the new code compared with it
        would prove nothing), or is damaged (added to ``damaged``)."""
        target = self.workspace.targets[record.target]
        try:
            return replay_cell(self, target, record, inputs, process, why)
        except ResultMovedOn:
            return None
        except DamagedResult as exc:
            damaged.append((exc.target or "", exc.date or "", exc.generation, str(exc)))
            return None

    # -- the sample ------------------------------------------------------------------------

    def sample_order(
        self,
        target: Target,
        stored: list[CellRecord],
        seed_key: str,
        prefer: date | None,
    ) -> Iterator[tuple[CellRecord, str]]:
        """Stored cells in the order they are sampled, each with why it was picked."""
        by_date = {record.date: record for record in stored}
        order: list[tuple[str, str]] = []
        if prefer is not None and prefer.isoformat() in by_date:
            order.append((prefer.isoformat(), "asked date"))
        order += [(stored[-1].date, "newest"), (stored[0].date, "oldest")]
        if target.historical:
            order += [
                (r.date, "first day of a chain") for r in stored if PREVIOUS not in r.dep_results
            ]
        rest = [record.date for record in stored]
        seed = hash_json([self.settings.seed, target.name, seed_key])
        random.Random(seed).shuffle(rest)
        order += [(iso, "random") for iso in rest]
        seen: set[str] = set()
        for iso, why in order:
            if iso not in seen:
                seen.add(iso)
                yield by_date[iso], why

    def user_part(self, target: Target, record: CellRecord) -> tuple[int, int]:
        """(part, parts) of the users replayed in a per_user cell: (0, 1) is every user."""
        wanted = self.settings.replay_users
        if record.item_count <= wanted:
            return 0, 1
        parts = -(-record.item_count // wanted)
        seed = hash_json([self.settings.seed, target.name, record.date, "users"])
        return random.Random(seed).randrange(parts), parts

    # -- the cell's current inputs ---------------------------------------------------------

    def fingerprint(self, source: str, day: date) -> str | None:
        key = (source, day)
        if key not in self._fingerprints:
            root = self.sources[source]
            self._fingerprints[key] = root.fingerprint(day) if root.available(day) else None
        return self._fingerprints[key]

    def as_of(self, dep: Target, day: date) -> date | None:
        """The date of ``dep``'s cell a dependent reads on ``day`` (as the planner picks it)."""
        start = self.workspace.start_date
        if dep.schedule is DAILY:
            return day if day >= start else None
        probe = day
        while probe >= start:
            if dep.schedule.is_due(probe):
                return probe
            probe -= timedelta(days=1)
        return None

    def previous_cell(self, target: Target, day: date) -> CellRecord | None | bool:
        """A historical cell's previous result (its record), None on a chain's first day,
        False when the cache cannot say (a due day without any record)."""
        probe = day - timedelta(days=1)
        while probe >= self.workspace.start_date:
            record: CellRecord | None = self.backend.get_cell(target.name, probe.isoformat())
            if record is not None and record.has_result:
                return record
            due = target.schedule.is_due(probe)
            if due and (record is None or record.status != IMPOSSIBLE):
                return False
            probe -= timedelta(days=1)
        return None

    def current_inputs(self, target: Target, day: date, record: CellRecord) -> CellInputsNow | None:
        """The cell's inputs today, when they are still exactly the recorded ones; else None."""
        fingerprints = root_fingerprints(target, day, self.fingerprint)
        if dict(fingerprints) != dict(record.root_fingerprints):
            return None
        if any(self.fingerprint(source, day) is None for source in target.roots):
            return None
        deps: dict[str, tuple[Target, date]] = {}
        for label in target.deps:
            dep = self.by_label[label]
            dep_day = self.as_of(dep, day)
            if dep_day is None:
                return None
            found = self.backend.get_cell(dep.name, dep_day.isoformat())
            current = found.result_hash if found is not None and found.has_result else None
            if current is None or current != record.dep_results.get(label):
                return None
            deps[label] = (dep, dep_day)
        previous: CellRecord | None = None
        if target.historical:
            found_previous = self.previous_cell(target, day)
            if found_previous is False:
                return None
            previous = found_previous if isinstance(found_previous, CellRecord) else None
            recorded = record.dep_results.get(PREVIOUS)
            if (previous.result_hash if previous else None) != recorded:
                return None
        return CellInputsNow(deps, previous)


@dataclass(frozen=True)
class CellInputsNow:
    """A replayable cell's dep cells (label -> (dep, date)) and its previous cell."""

    deps: dict[str, tuple[Target, date]]
    previous: CellRecord | None

    def previous_date(self) -> date | None:
        return date.fromisoformat(self.previous.date) if self.previous is not None else None


def dates_of(records: Iterable[CellRecord]) -> list[str]:
    return sorted(record.date for record in records)
