"""``verify``'s replay: stored results of the base's code, recomputed with the new code.

Only cells whose record says the base's code made them are replayed (a result of a third
version of the code would blame the change for a difference it did not make). A target with
no such cell rests on fabricated evidence alone, and the report says so.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import TYPE_CHECKING, Any

from btbuild.errors import BtbuildError
from btbuild.sim.replay import Replayer, ReplayResult
from btbuild.storage.records import CellRecord
from btbuild.vocabulary import VerdictKind
from btbuild.workspace.model import Target

if TYPE_CHECKING:
    from btbuild.session import Session
    from btbuild.sim.verify import ChangedTarget

COSMETIC = VerdictKind.COSMETIC  # the verdicts of btbuild.sim.verify
BEHAVIOUR_CHANGED = VerdictKind.BEHAVIOUR_CHANGED
UNPROVEN = VerdictKind.UNPROVEN

FABRICATED_ONLY = "no stored result of the base's code to replay: fabricated evidence only"


def replay_changes(
    session: Session, changed: list[tuple[Target, Target]], old_hashes: dict[str, Any], runner: Any
) -> dict[str, ReplayResult | None]:
    """Label -> what replaying the target's stored cells showed (None: nothing to replay)."""
    from btbuild.sim.optimizer import code_key

    workspace = session.workspace
    replayer = Replayer(
        workspace,
        session.plugins.root_sources(),
        session.backend,
        loader=runner.loader,
        logs=runner.logs,
    )
    first, last = workspace.start_date, max(date.today(), workspace.start_date)
    found: dict[str, ReplayResult | None] = {}
    for before, target in changed:
        old = code_key(old_hashes[before.name])

        def made_by_base(record: CellRecord, old: str = old) -> bool:
            return record.code_hash == old

        try:
            result = replayer.replay(target, made_by_base, first, last, seed_key=old)
        except BtbuildError:
            result = None  # the new code cannot be loaded: the fabricated runs say so
        found[target.label] = result if result is not None and result.stored else None
    return found


def cache_note(replays: dict[str, ReplayResult | None]) -> str:
    used = [label for label, result in replays.items() if result is not None and result.replayed]
    if not used:
        return (
            "the workspace's cache holds no stored result of the base's code: "
            "every verdict rests on fabricated evidence alone"
        )
    return f"replayed stored results of {len(used)} of {len(replays)} changed target(s)"


def with_replay(
    judged: list[ChangedTarget], replays: dict[str, ReplayResult | None]
) -> list[ChangedTarget]:
    """The fabricated verdicts, corrected by what the replay showed."""
    out = []
    for change in judged:
        result = replays.get(change.label)
        if result is None or not result.replayed:
            note = (
                FABRICATED_ONLY
                if result is None
                else (
                    "stored results of the base's code could not be replayed "
                    "(their inputs changed since): fabricated evidence only"
                )
            )
            out.append(replace(change, reason=change.reason or note))
            continue
        facts = result.to_json()
        if result.counterexample is not None:
            found = result.counterexample
            user = f" user {found['user']}" if found.get("user") else ""
            reason = f"behaviour_changed: replay of the stored cell {found['date']}{user} differs"
            counter = change.counterexample if change.verdict == BEHAVIOUR_CHANGED else found
            out.append(
                replace(
                    change,
                    verdict=BEHAVIOUR_CHANGED,
                    counterexample=counter,
                    # an unproven verdict's gap is no reason for a difference the replay found
                    reason=change.reason if change.verdict == BEHAVIOUR_CHANGED else reason,
                    replay=facts,
                )
            )
            continue
        if result.limited and change.verdict in (COSMETIC, "weak"):
            out.append(
                replace(
                    change,
                    verdict=UNPROVEN,
                    reason=f"unproven: {result.limited}",
                    replay=facts,
                    weak=False,
                )
            )
            continue
        agree = f"{len(result.replayed)} stored cell(s) replayed ({result.contexts} contexts) agree"
        if change.verdict == BEHAVIOUR_CHANGED and change.reason:
            # a real difference of the code, on inputs the stored cells never had
            reason = (
                f"{change.reason}; {agree}: the difference is on inputs the real data has not "
                "had (yet). It is a behaviour change of the code; if the sources can never "
                "produce such data, declare that in their schema (btbuild sim shows what is "
                "fabricated) or pass --expect-change"
            )
        else:
            reason = change.reason or (agree if change.verdict == COSMETIC else "")
        out.append(replace(change, reason=reason, replay=facts))
    return out
