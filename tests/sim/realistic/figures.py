"""The corpus' figures (issue 11 "Done when") from the outcomes of bugs, refactors and mutants."""

from __future__ import annotations

from dataclasses import dataclass

from harness import Outcome

MUTANTS_DETECTED = 0.99
REFACTORS_PROVEN = 0.90


@dataclass(frozen=True)
class Figures:
    outcomes: tuple[Outcome, ...]

    def of(self, kind: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.edit.kind == kind]

    @property
    def bugs_skipped(self) -> list[Outcome]:
        """Behaviour changes some cell of which was skipped as cosmetic (must be none)."""
        return [o for o in self.of("bug") if o.changed and o.build_missed]

    @property
    def bugs_verify_ok(self) -> list[Outcome]:
        """Behaviour changes ``verify`` let pass with exit 0 (must be none)."""
        return [o for o in self.of("bug") if o.changed and o.verify_missed]

    @property
    def bugs_not_seen(self) -> list[Outcome]:
        """Hand-written bugs the oracle sees no difference for: the corpus is wrong."""
        return [o for o in self.of("bug") if not o.changed]

    @property
    def refactors_changing(self) -> list[Outcome]:
        """Hand-written refactors whose real results differ: the corpus is wrong."""
        return [o for o in self.of("refactor") if o.changed]

    @property
    def refactors_proven(self) -> list[Outcome]:
        return [o for o in self.of("refactor") if o.proven]

    @property
    def non_equivalent(self) -> list[Outcome]:
        return [o for o in self.of("mutant") if o.changed]

    @property
    def mutants_missed(self) -> list[Outcome]:
        return [o for o in self.non_equivalent if o.missed]

    def rate(self, part: int, whole: int) -> float:
        return part / whole if whole else 1.0

    @property
    def mutant_rate(self) -> float:
        live = self.non_equivalent
        return self.rate(len(live) - len(self.mutants_missed), len(live))

    @property
    def refactor_rate(self) -> float:
        return self.rate(len(self.refactors_proven), len(self.of("refactor")))

    def lines(self) -> list[str]:
        bugs, refactors, mutants = self.of("bug"), self.of("refactor"), self.of("mutant")
        live = self.non_equivalent
        build_missed = [o for o in live if o.build_missed]
        verify_missed = [o for o in live if o.verify_missed]

        def verdict(ok: bool) -> str:
            return "MET" if ok else "NOT MET"

        return [
            f"behaviour changes: {len(bugs)} hand-written, {len(self.bugs_not_seen)} not seen by the oracle",
            f"  skipped as cosmetic by build: {len(self.bugs_skipped)} (target 0) "
            f"{verdict(not self.bugs_skipped)}",
            f"  passed by verify (exit 0):    {len(self.bugs_verify_ok)} (target 0) "
            f"{verdict(not self.bugs_verify_ok)}",
            f"refactors: {len(refactors)}, proven cosmetic {len(self.refactors_proven)} "
            f"({self.refactor_rate:.1%}, target >= {REFACTORS_PROVEN:.0%}) "
            f"{verdict(self.refactor_rate >= REFACTORS_PROVEN)}; changing real results: "
            f"{len(self.refactors_changing)}",
            f"mutants: {len(mutants)}, non-equivalent on real data {len(live)}; missed by build "
            f"{len(build_missed)}, by verify {len(verify_missed)}; detected by both "
            f"{len(live) - len(self.mutants_missed)} ({self.mutant_rate:.1%}, target >= "
            f"{MUTANTS_DETECTED:.0%}) {verdict(self.mutant_rate >= MUTANTS_DETECTED)}",
        ]

    def misses(self) -> list[str]:
        missed = [o for o in self.outcomes if o.edit.kind != "refactor" and o.changed and o.missed]
        return [o.summary() for o in missed]
