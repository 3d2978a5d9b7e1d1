"""Repair of earlier cosmetic adoptions.

A cell skipped as ``cosmetic`` adopts the new code hash: its record's ``code_hash`` becomes the
new code's and ``sim_hash`` says which SimHash proved it and under which evidence scheme
(``<simhash>;scheme=N``, :data:`btbuild.sim.verdict.SIM_SCHEME`); the equivalence ledger
(``Backend.equivalences()``) keeps the old code hash. A later build would see such a cell as
plainly up to date. When the evidence rule gets stronger (a new scheme), or on demand
(``btbuild build --recheck-cosmetic``), the cells still holding an adopted result are examined
again: the adopted code is judged against the old code by today's rule - replaying the
adopted stored cells among the rest - and the cells re-run when it cannot be proven.

Finding them costs one read of the ledger per build; only the cells the ledger names are read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from btbuild.sim.optimizer import code_key
from btbuild.sim.verdict import SIM_SCHEME, Verdict, scheme_of
from btbuild.storage.records import COMMITTED, CellRecord
from btbuild.workspace.model import Target

if TYPE_CHECKING:
    from btbuild.session import Session


@dataclass(frozen=True)
class Adoption:
    """A cell that adopted its code hash through a cosmetic verdict."""

    old_code: str  # the code that made the stored result
    scheme: int  # the evidence scheme the adoption was proven under


def stale_adoptions(
    session: Session, targets: Mapping[str, Target], dates: Sequence[date], *, everything: bool
) -> dict[tuple[str, date], Adoption]:
    """The cells of ``targets`` x ``dates`` to examine again: adopted under an older scheme
    (or any adoption when ``everything``), still holding that adopted result, with the
    current code being the adopted one."""
    backend = session.backend
    if not dates or not targets:
        return {}
    first, last = dates[0].isoformat(), dates[-1].isoformat()
    latest: dict[tuple[str, str], Any] = {}
    for entry in backend.equivalences():
        if entry.target in targets and first <= entry.date <= last:
            latest[(entry.target, entry.date)] = entry  # the ledger is in recording order
    wanted = {
        key: entry
        for key, entry in latest.items()
        if everything or scheme_of(entry.sim_hash) < SIM_SCHEME
    }
    if not wanted:
        return {}
    names = sorted({name for name, _ in wanted})
    records = backend.get_cells(names, sorted({iso for _, iso in wanted}))
    found: dict[tuple[str, date], Adoption] = {}
    for (name, iso), entry in wanted.items():
        record = records.get((name, iso))
        current = code_key(session.hashes[name])
        if (
            record is not None
            and record.has_result
            and record.sim_hash is not None
            and record.code_hash == entry.new_code_hash == current
        ):
            found[(name, date.fromisoformat(iso))] = Adoption(
                entry.old_code_hash, scheme_of(record.sim_hash)
            )
    return found


def restamp(
    backend: Any,
    target: Target,
    day: date,
    adoption: Adoption,
    record: CellRecord,
    verdict: Verdict,
) -> None:
    """An adoption proven again under today's scheme: record it, so it is not examined again."""
    if record.status != COMMITTED or verdict.sim_hash is None:
        return
    iso = day.isoformat()
    expect = (record.generation, record.composite_hash)  # not over another builder's result
    if (
        backend.put_cell_status(
            target.name, iso, COMMITTED, expect=expect, sim_hash=verdict.sim_hash
        )
        is None
    ):
        return
    backend.record_equivalence(
        target.name, adoption.old_code, record.code_hash or "", verdict.sim_hash, iso
    )
