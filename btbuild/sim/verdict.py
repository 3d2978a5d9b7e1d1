"""Verdicts on a code change: the evidence rule behind every ``cosmetic`` skip.

A cell whose only changes are its code and/or layers hashes is skipped as ``cosmetic`` only
when **all** the evidence is strong:

1. replay: a deterministic sample of exactly the stored cells the skip would keep was
   recomputed with the new code on their real inputs and every output matched
   (:mod:`btbuild.sim.replay`);
2. fabricated: the new code's SimHash equals the one registered for the old code, and the
   simulation gave at least two distinct real outputs;
3. coverage: every changed statement ran and every changed branch went both ways
   (:mod:`btbuild.sim.coverage`, when installed).

Anything else re-runs the cell (reason ``code_changed``) and says why in ``explain``,
``status`` and ``--format json``: ``behaviour_changed: ...`` (a counterexample), ``unproven:
...`` (evidence missing) or ``weak: N distinct output(s)``. ``SIM_SCHEME`` names this rule:
a cosmetic adoption records it, and adoptions made under an older scheme are examined again
on the next build (:mod:`btbuild.sim.recheck`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from btbuild.vocabulary import VerdictKind

SIM_SCHEME = 6  # 1: SimHash only; 2: + replay; 3: + coverage of the change and the v2 worlds;
# 4: time-outs and other machine-dependent outcomes are never evidence; 5: outputs compared
# as stored (an int is not a float, a tuple is refused); 6: floats compared exactly (the
# stored bytes), not to 9 significant digits; functions reached through dispatch tables,
# registries and getattr, callees of changed values and changed table entries covered
# (bump whenever the evidence rule gets stronger: earlier adoptions are then re-examined)

COSMETIC = VerdictKind.COSMETIC
BEHAVIOUR_CHANGED = VerdictKind.BEHAVIOUR_CHANGED
UNPROVEN = VerdictKind.UNPROVEN
WEAK = VerdictKind.WEAK


@dataclass(frozen=True)
class Verdict:
    """The verdict on one target's change from one old code hash."""

    kind: str  # cosmetic, behaviour_changed, unproven, weak
    reason: str  # one line, starting with the kind
    combined: str | None = None  # the new code's SimHash when cosmetic
    counterexample: dict[str, Any] | None = None
    replay: dict[str, Any] | None = None  # ReplayResult.to_json()
    fabricated_contexts: int = 0
    distinct_outputs: int = 0

    @property
    def sim_hash(self) -> str | None:
        """What a cosmetic adoption records (cell record and ledger): the SimHash and the
        scheme it was proven under; None for every verdict that does not skip."""
        if self.kind != COSMETIC or self.combined is None:
            return None
        return f"{self.combined};scheme={SIM_SCHEME}"

    @property
    def skips(self) -> bool:
        return self.sim_hash is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.kind,
            "reason": self.reason,
            "counterexample": self.counterexample,
            "replay": self.replay,
            "fabricated_contexts": self.fabricated_contexts,
            "distinct_outputs": self.distinct_outputs,
        }


def scheme_of(sim_hash: str | None) -> int:
    """The scheme a recorded adoption was proven under (1: recorded before schemes existed)."""
    if not sim_hash or ";scheme=" not in sim_hash:
        return 1
    try:
        return int(sim_hash.rsplit(";scheme=", 1)[1])
    except ValueError:
        return 1


def unproven(reason: str) -> Verdict:
    return Verdict(UNPROVEN, f"unproven: {reason}")


def weak(distinct: int, contexts: int) -> Verdict:
    plural = "" if distinct == 1 else "s"
    return Verdict(
        WEAK,
        f"weak: {distinct} distinct output{plural} in {contexts} fabricated contexts",
        fabricated_contexts=contexts,
        distinct_outputs=distinct,
    )
