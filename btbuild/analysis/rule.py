"""The decision rule for a cell whose input key differs from its cache summary's (or whose
record needs a closer look): read against its full record. Pure: the planner passes what it
knows; ``equivalent`` is the simulation's judge of a code-only change."""

from __future__ import annotations

from btbuild.analysis.cells import (
    DEAD_LETTER,
    RUNNABLE,
    SKIPPED,
    CellInputs,
    Decision,
    compare,
    only_code_changed,
    reason_for,
)
from btbuild.analysis.views import Equivalent, RecordView
from btbuild.vocabulary import Reason, RecordStatus
from btbuild.workspace.model import Target

RECORD_FAILED = RecordStatus.FAILED
RECORD_DEAD_LETTER = RecordStatus.DEAD_LETTER
RECORD_EXPIRED = RecordStatus.EXPIRED


def against_record(
    target: Target,
    inputs: CellInputs,
    record: RecordView,
    composite_hash: str | None,
    deps_reran: bool,
    retry_dead: bool,
    equivalent: Equivalent,
) -> tuple[Decision, str | None]:
    """The decision on a cell whose inputs differ from its summary's, from its full record,
    and the SimHash that proved a cosmetic change (None otherwise)."""
    if (
        record.status == RECORD_EXPIRED
        and composite_hash == inputs.key
        and record.result_hash is not None
    ):  # up to date, its result collected: recomputed only when a cell must read it
        return Decision(SKIPPED, Reason.EXPIRED, result_hash=record.result_hash), None
    if record.status == RECORD_DEAD_LETTER and record.attempt_key in (None, inputs.key):
        # dead letters belong to their inputs: the same inputs stay dead (unless
        # --retry-dead); a changed key is decided as any other cell below
        if retry_dead:
            return Decision(RUNNABLE, Reason.RETRY_DEAD, detail=record.last_error or ""), None
        return Decision(DEAD_LETTER, Reason.MAX_ATTEMPTS, detail=record.last_error or ""), None
    if not record.has_result:
        if record.status == RECORD_DEAD_LETTER:
            detail = f"its inputs changed since it was dead-lettered: {record.last_error or ''}"
            return Decision(RUNNABLE, Reason.RETRY, detail=detail), None
        if record.status == RECORD_FAILED:
            return Decision(RUNNABLE, Reason.RETRY, detail=record.last_error or ""), None
        return Decision(RUNNABLE, Reason.NEW), None
    changes = compare(record.components, record.root_fingerprints, record.dep_results, inputs)
    if not changes and record.composite_hash != inputs.key:
        # the record lists today's inputs but names others: garbled or foreign, never trusted
        # (its own composite hash: the plan's summary may be older than this record)
        detail = "its record's inputs do not give its composite hash"
        return Decision(RUNNABLE, Reason.DAMAGED, detail=detail), None
    if not changes:
        reason = Reason.EARLY_CUTOFF if deps_reran else Reason.UP_TO_DATE
        return Decision(SKIPPED, reason, result_hash=record.result_hash), None
    why = ""
    if "?" not in inputs.dep_results.values() and only_code_changed(changes):
        verdict = equivalent(target, record, inputs)
        sim_hash = getattr(verdict, "sim_hash", None)
        if sim_hash is not None:
            decision = Decision(
                SKIPPED,
                Reason.COSMETIC,
                tuple(changes),
                sim_hash=sim_hash,
                result_hash=record.result_hash,
            )
            return decision, sim_hash
        why = str(getattr(verdict, "reason", "") or "")  # why it could not be proven
    if record.status == RECORD_FAILED and record.attempt_key in (None, inputs.key):
        return Decision(
            RUNNABLE, Reason.RETRY, tuple(changes), detail=record.last_error or ""
        ), None
    return Decision(RUNNABLE, reason_for(changes), tuple(changes), detail=why), None
