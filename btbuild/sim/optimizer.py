"""Cosmetic-change optimizer: proves a code change behaviour-preserving with SimHashes.

The SimHash registry maps a *sim key* to the SimHash that code produced. A target's SimHash
depends on more than its own code: its deps' fabricated outputs come from running the
upstream code, and the fabricated roots from the plugins' strategies. So the sim key is

    hash_json({code: hash_json([code, layers]), declaration, infra,
               deps: [sim key of each dep, with its current code]})

(plus the fabricator version, the registry's second key). The old code's key is rebuilt
from ``record.code_hash`` with the *current* declaration, infra and upstream keys; the
scheduler only asks when code or layers alone changed, so declaration and infra are the
record's. If an upstream's code changed since the old code's SimHash was registered, the key
is unknown and the cell re-runs: a miss costs a run, never a wrong skip.

A simulation that cannot tell code versions apart (fewer than two distinct real outputs, e.g.
every fabricated context failed upstream) never proves anything: the cell re-runs.

Registered: after a real build, the SimHash of every target that ran (``after_run``); and
the new code's SimHash when a change was proven cosmetic (so a second cosmetic edit can be
proven too, since the record then carries the new code hash).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from btbuild.analysis.cells import CellInputs
from btbuild.errors import BtbuildError
from btbuild.hashing.digest import hash_json
from btbuild.sim.fabricator import fabricator_version
from btbuild.sim.runner import SimResult, SimRunner
from btbuild.storage.records import CellRecord
from btbuild.workspace.model import Target

Checker = Callable[[Target, CellRecord, CellInputs], "str | None"]


def code_key(hashes: Any) -> str:
    """``record.code_hash`` of a target's current code: ``hash_json([code, layers])``."""
    return hash_json([hashes.code, hashes.layers])


class SimHashes:
    """SimHashes and sim keys of one session's targets, each computed at most once."""

    def __init__(self, session: Any):
        self.session = session
        self._runner: SimRunner | None = None
        self._results: dict[str, SimResult | None] = {}
        self._keys: dict[str, str] = {}
        self.version = fabricator_version()

    @property
    def runner(self) -> SimRunner:
        if self._runner is None:
            self._runner = SimRunner(
                self.session.workspace,
                self.session.plugins.root_sources(),
                predicates=self.session.plugins.segment_predicates,
            )
        return self._runner

    def sim_key(self, target: Target, code_hash: str | None = None) -> str:
        """The registry key of ``target`` with code ``code_hash`` (default: its current code)."""
        hashes = self.session.hashes[target.name]
        if code_hash is None and target.name in self._keys:
            return self._keys[target.name]
        by_label = self.session.workspace.by_label()
        key = hash_json(
            {
                "code": code_hash or code_key(hashes),
                "declaration": hashes.declaration,
                "infra": hashes.infra,
                "deps": sorted(
                    [by_label[label].name, self.sim_key(by_label[label])] for label in target.deps
                ),
            }
        )
        if code_hash is None:
            self._keys[target.name] = key
        return key

    def result(self, target: Target) -> SimResult | None:
        """The current code's simulation; None when the code cannot even be loaded."""
        if target.name not in self._results:
            try:
                self._results[target.name] = self.runner.simulate(target.name)
            except BtbuildError:
                self._results[target.name] = None
        return self._results[target.name]

    def register(self, target: Target) -> str | None:
        backend = self.session.backend
        key = self.sim_key(target)
        known = backend.get_sim_hash(key, self.version)
        if known is not None:
            return str(known)
        result = self.result(target)
        if result is None:
            return None
        backend.put_sim_hash(key, self.version, result.combined)
        return result.combined


def equivalence_checker(session: Any, *, register: bool = False) -> Checker:
    """``equivalent(target, record, inputs)``: the new SimHash if the change is cosmetic, else None.

    Called by the scheduler when only the code and/or layers hashes of a cell changed. With
    ``register`` (a real build), a proven new code's SimHash is registered under its key.
    """
    sims = SimHashes(session)
    verdicts: dict[tuple[str, str], str | None] = {}

    def equivalent(target: Target, record: CellRecord, inputs: CellInputs) -> str | None:
        if not record.code_hash:
            return None
        cache_key = (target.name, record.code_hash)
        if cache_key not in verdicts:
            verdicts[cache_key] = _decide(sims, target, record.code_hash, register)
        return verdicts[cache_key]

    return equivalent


def _decide(sims: SimHashes, target: Target, old_code: str, register: bool) -> str | None:
    backend = sims.session.backend
    old = backend.get_sim_hash(sims.sim_key(target, old_code), sims.version)
    if old is None:
        return None
    result = sims.result(target)
    if result is None or not result.informative or result.combined != old:
        return None
    if register:
        backend.put_sim_hash(sims.sim_key(target), sims.version, result.combined)
    return result.combined


def after_run_callback(session: Any) -> Callable[[list[Target]], None]:
    """``after_run(targets)`` for the scheduler: register the SimHash of each target that ran."""
    sims = SimHashes(session)

    def after_run(targets: list[Target]) -> None:
        for target in targets:
            sims.register(target)

    return after_run
