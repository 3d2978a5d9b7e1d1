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

The SimHash is one of three pieces of evidence (:mod:`btbuild.sim.verdict`): the stored cells
are also replayed with the new code (:mod:`btbuild.sim.replay`) and the change's coverage is
checked. Beside each SimHash, the keys of the deps it was simulated with are registered
(under :meth:`SimHashes.deps_key`): when an upstream changed in the same build, the old
SimHash still holds if that upstream's new code simulates exactly as its old code did;
otherwise the verdict is ``unproven: upstream ... also changed in this build``.

Registered: after a real build, the SimHash of every target that ran (``after_run``); and
the new code's SimHash when a change was proven cosmetic (so a second cosmetic edit can be
proven too, since the record then carries the new code hash).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING

from btbuild.errors import BtbuildError
from btbuild.hashing.composite import code_key as code_key  # (sim imports it from here)
from btbuild.hashing.digest import hash_json
from btbuild.sim.logs import LogCapture
from btbuild.sim.runner import SimResult, SimRunner
from btbuild.sim.snapshots import remember
from btbuild.sim.verdict import Verdict, unproven
from btbuild.workspace.model import Target

if TYPE_CHECKING:
    from btbuild.session import Session


class SimHashes:
    """SimHashes and sim keys of one session's targets, each computed at most once."""

    def __init__(self, session: Session, logs: LogCapture | None = None):
        self.session = session
        self.logs = logs or LogCapture()
        self._runner: SimRunner | None = None
        self._results: dict[str, SimResult | None] = {}
        self._keys: dict[str, str] = {}
        self._version: str | None = None

    @property
    def version(self) -> str:
        """The registry's second key: the fabricator's version, which covers the sources'
        strategies and schemas and the real data the worlds derive from."""
        if self._version is None:
            self._version = self.runner.fabricator.version
        return self._version

    def adopt_version(self, version: str) -> None:
        """The fabricator version another process computed for this workspace (the isolated
        judge's child): keys and writes here then need no fabricator of their own."""
        self._version = version

    @property
    def runner(self) -> SimRunner:
        if self._runner is None:
            self._runner = SimRunner(
                self.session.workspace,
                self.session.plugins.root_sources(),
                logs=self.logs,
                predicates=self.session.plugins.segment_predicates,
            )
        return self._runner

    def dep_keys(self, target: Target) -> list[list[str]]:
        """[dep name, dep's current sim key] of each dep, sorted."""
        by_label = self.session.workspace.by_label()
        return sorted(
            [by_label[label].name, self.sim_key(by_label[label])] for label in target.deps
        )

    def sim_key(
        self, target: Target, code_hash: str | None = None, deps: list[list[str]] | None = None
    ) -> str:
        """The registry key of ``target`` with code ``code_hash`` (default: its current code)
        and upstream keys ``deps`` (default: the current ones)."""
        hashes = self.session.hashes[target.name]
        current = code_hash is None and deps is None
        if current and target.name in self._keys:
            return self._keys[target.name]
        key = hash_json(
            {
                "code": code_hash or code_key(hashes),
                "declaration": hashes.declaration,
                "infra": hashes.infra,
                "deps": self.dep_keys(target) if deps is None else deps,
            }
        )
        if current:
            self._keys[target.name] = key
        return key

    def deps_key(self, target: Target, code_hash: str | None = None) -> str:
        """The registry key under which the dep keys a code's SimHash was registered with are kept."""
        hashes = self.session.hashes[target.name]
        return hash_json(
            {
                "deps_of": code_hash or code_key(hashes),
                "declaration": hashes.declaration,
                "infra": hashes.infra,
            }
        )

    def result(self, target: Target) -> SimResult | None:
        """The current code's simulation; None when the code cannot even be loaded."""
        if target.name not in self._results:
            try:
                self._results[target.name] = self.runner.simulate(target.name)
            except BtbuildError:
                self._results[target.name] = None
        return self._results[target.name]

    def current(self, target: Target) -> str | None:
        """The current code's SimHash: registered, or simulated now (None when the code cannot
        be loaded or its simulation is limited, e.g. timed out: no evidence)."""
        known = self.session.backend.get_sim_hash(self.sim_key(target), self.version)
        if known is not None:
            return str(known)
        result = self.result(target)
        return None if result is None or result.limited else result.combined

    def register(self, target: Target, combined: str | None = None) -> str | None:
        backend = self.session.backend
        key = self.sim_key(target)
        known = backend.get_sim_hash(key, self.version) if combined is None else None
        if known is None:
            if combined is None:
                result = self.result(target)
                if result is None:
                    return None
                if result.limited:  # depends on the machine: never registered as evidence
                    backend.put_sim_hash(self.limited_key(target), self.version, result.limited)
                    return None
                combined = result.combined
            backend.put_sim_hash(key, self.version, combined)
        backend.put_sim_hash(self.deps_key(target), self.version, json.dumps(self.dep_keys(target)))
        # the code itself, for coverage of a later change from it (btbuild/sim/snapshots.py)
        remember(
            backend, code_key(self.session.hashes[target.name]), target, self.session.workspace
        )
        return str(known) if known is not None else combined

    def limited_key(self, target: Target, code_hash: str | None = None) -> str:
        """Where why a code's simulation proved nothing (a time-out...) is kept: beside, never
        in, its SimHash's key, so a limited simulation can never be compared as a SimHash."""
        return hash_json({"limited": self.sim_key(target, code_hash)})

    def old(self, target: Target, old_code: str) -> str | Verdict:
        """The SimHash registered for ``old_code``, or why there is none to compare with."""
        backend = self.session.backend
        known = backend.get_sim_hash(self.sim_key(target, old_code), self.version)
        if known is not None:
            return str(known)
        recorded = backend.get_sim_hash(self.deps_key(target, old_code), self.version)
        if recorded is None:
            limited = backend.get_sim_hash(self.limited_key(target, old_code), self.version)
            if limited is not None:
                return unproven(f"the old code's simulation proved nothing: {limited}")
            return unproven(
                f"no simulation of the old code is registered (fabricator {self.version})"
            )
        then = {name: key for name, key in json.loads(recorded)}
        now = dict(self.dep_keys(target))
        moved = sorted(name for name in set(then) | set(now) if then.get(name) != now.get(name))
        by_name = self.session.workspace.targets
        if moved and all(self._simulates_as(by_name.get(name), then.get(name)) for name in moved):
            old_deps = sorted([name, key] for name, key in then.items())
            known = backend.get_sim_hash(self.sim_key(target, old_code, old_deps), self.version)
            if known is not None:
                return str(known)
        labels = ", ".join(by_name[n].label if n in by_name else n for n in moved) or "?"
        return unproven(f"upstream {labels} also changed in this build")

    def _simulates_as(self, upstream: Target | None, old_key: str | None) -> bool:
        """Whether ``upstream``'s current code simulates exactly as the code of ``old_key``."""
        if upstream is None or old_key is None:
            return False
        before = self.session.backend.get_sim_hash(old_key, self.version)
        return before is not None and before == self.current(upstream)


def after_run_callback(session: Session) -> Callable[[list[Target]], None]:
    """``after_run(targets)`` for the scheduler: register the SimHash of each target that ran."""
    sims = SimHashes(session)

    def after_run(targets: list[Target]) -> None:
        for target in targets:
            sims.register(target)

    return after_run
