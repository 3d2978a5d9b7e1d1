"""Cell inputs and the decision rule: should (target, date) run, and why?

The analysis stage is pure: it takes the target's hashes, the root index, the cache record
and the outcomes of the cells it depends on, and returns a :class:`Decision`. The build
scheduler calls :func:`decide` for each cell once its deps are final, which is what makes
early cutoff exact; ``--dry-run`` calls it with planned dep outcomes instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cached_property

import xxhash

from btbuild.hashing.composite import TargetHashes
from btbuild.hashing.digest import hash_json
from btbuild.vocabulary import FINAL_STATUSES, Reason, Status
from btbuild.workspace.model import Target

# statuses (DESIGN.md section 5), by their old names
RAN = Status.RAN
RUNNABLE = Status.RUNNABLE
SKIPPED = Status.SKIPPED
BLOCKED = Status.BLOCKED
IMPOSSIBLE = Status.IMPOSSIBLE
FAILED = Status.FAILED
DEAD_LETTER = Status.DEAD_LETTER
STATUSES = FINAL_STATUSES

PREVIOUS = "@previous"  # key of a historical cell's own previous-day result in dep_results
MISSING = "-"  # fingerprint of a look-back day without data


@dataclass(frozen=True)
class Change:
    """One input that differs from the cache record: what it is, old and new value."""

    component: str  # "code", "layers", "roots:prices", "deps://pricing:returns", ...
    old: str | None
    new: str | None


@dataclass(frozen=True)
class Decision:
    status: Status  # runnable, skipped, blocked, impossible, dead_letter
    reason: Reason
    changes: tuple[Change, ...] = ()
    detail: str = ""  # e.g. which root source is missing
    sim_hash: str | None = None  # the SimHash that proved a cosmetic change
    # a skip decided on a full cache record: that record's result hash, which dependents read
    # (a skip decided on the plan's summary takes the summary's; never mix two reads)
    result_hash: str | None = None

    @property
    def runs(self) -> bool:
        return self.status == RUNNABLE


@dataclass(frozen=True)
class CellTask:
    """One cell to run: what it is, why, and every input the commit must record."""

    name: str
    day: date
    reason: str
    build_pass: int
    key: str  # CellInputs.key: the cell's input hash, stored as composite_hash
    static: str
    code_hash: str
    components: dict[str, str]
    root_fingerprints: dict[str, str]
    dep_results: dict[str, str]
    dep_dates: dict[str, date]  # dep target name -> the date of the dep cell it reads
    previous_date: date | None = None  # historical: the cell whose result is ctx.previous
    sim_hash: str | None = None
    changed: tuple[str, ...] = ()  # the inputs that differ from the cache record (run log)


@dataclass(frozen=True)
class CellInputs:
    """Everything a cell's result depends on; equal inputs -> equal result."""

    static: str
    components: Mapping[str, str]
    root_fingerprints: Mapping[str, str]
    dep_results: Mapping[str, str]
    code_hash: str

    @cached_property
    def key(self) -> str:
        """The cell's input hash, stored as the record's composite_hash: a no-op build
        compares it with the cache, one string per cell."""
        return input_key(self.static, self.root_fingerprints, self.dep_results)


KEY_SCHEME = "cell-inputs/1"


def roots_key_text(roots: Mapping[str, str]) -> str:
    return "\n".join([f"r:{name}={value}" for name, value in sorted(roots.items())])


def input_key(
    static: str,
    roots: Mapping[str, str],
    deps: Mapping[str, str],
    *,
    roots_text: str | None = None,
    deps_sorted: bool = False,
) -> str:
    """xxh3-128 over the sorted inputs, one per line. Labels, source names and hashes never
    hold "=" or a newline, so the text is unambiguous. ``roots_text`` (from
    :func:`roots_key_text`) and ``deps_sorted`` let the planner skip work it shares."""
    items = deps.items() if deps_sorted else sorted(deps.items())
    text = "\n".join(
        [
            KEY_SCHEME,
            static,
            roots_key_text(roots) if roots_text is None else roots_text,
            *[f"d:{name}={value}" for name, value in items],
        ]
    )
    return xxhash.xxh3_128_hexdigest(text.encode())


def date_range(first: date, last: date) -> list[date]:
    return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]


COMPONENTS = ("epoch", "code", "layers", "infra", "declaration")  # of target_components


def target_components(hashes: TargetHashes) -> dict[str, str]:
    return {
        "code": hashes.code,
        "layers": hashes.layers,
        "infra": hashes.infra,
        "epoch": str(hashes.epoch),
        "declaration": hashes.declaration,
    }


def root_fingerprints(
    target: Target, day: date, fingerprint: Callable[[str, date], str | None]
) -> dict[str, str]:
    """One fingerprint per root source, covering every day the target can see (look-back)."""
    result = {}
    for source in sorted(target.all_roots):
        days = target.lookback_days(source)
        window = [
            fingerprint(source, day - timedelta(days=back)) or MISSING for back in range(days + 1)
        ]
        result[source] = window[0] if days == 0 else hash_json(window)
    return result


def missing_roots(target: Target, day: date, available: Callable[[str, date], bool]) -> list[str]:
    return [source for source in target.roots if not available(source, day)]


def side_by_side(
    record_components: Mapping[str, str],
    record_roots: Mapping[str, str],
    record_deps: Mapping[str, str],
    inputs: CellInputs,
) -> list[Change]:
    """Every input of a cell, recorded value against current one, in the order explain
    prints them: the components, then the roots, then the deps."""
    rows = [
        Change(name, record_components.get(name), inputs.components.get(name))
        for name in COMPONENTS
    ]
    rows += [
        Change(f"roots:{source}", record_roots.get(source), inputs.root_fingerprints.get(source))
        for source in sorted(set(record_roots) | set(inputs.root_fingerprints))
    ]
    rows += [
        Change(f"deps:{dep}", record_deps.get(dep), inputs.dep_results.get(dep))
        for dep in sorted(set(record_deps) | set(inputs.dep_results))
    ]
    return rows


def compare(
    record_components: Mapping[str, str],
    record_roots: Mapping[str, str],
    record_deps: Mapping[str, str],
    inputs: CellInputs,
) -> list[Change]:
    """Every input that differs from the record, in the order explain prints them."""
    rows = side_by_side(record_components, record_roots, record_deps, inputs)
    return [row for row in rows if row.old != row.new]


def reason_for(changes: list[Change]) -> Reason:
    """The headline reason among several changes (most global first)."""
    names = {change.component.split(":", 1)[0] for change in changes}
    if "epoch" in names:
        return Reason.EPOCH_CHANGED
    if names & {"code", "layers", "declaration"}:
        return Reason.CODE_CHANGED
    if "infra" in names:
        return Reason.INFRA_CHANGED
    if "roots" in names:
        return Reason.ROOTS_CHANGED
    return Reason.DEPS_CHANGED


def only_code_changed(changes: list[Change]) -> bool:
    """True when the changes are limited to the code and layer hashes (a cosmetic candidate)."""
    return bool(changes) and all(change.component in ("code", "layers") for change in changes)
