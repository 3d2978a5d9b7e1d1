"""Replay of one stored cell: the current code on the cell's real inputs (see replay.py).

The context is built as a real build builds it (:mod:`btbuild.execution.runner`): root data
from the sources, whole deps read from the cache, per_user deps and ``previous`` streamed from
the cache, merged in user order. A per_user cell's users are those of its user-scope roots and
per_user deps (as in a build); only the users of the sampled part are read where a source can
skip the others. A user whose call raises or returns None has no stored value in a build, so
that is what it is compared with; a per_date call that raises differs from any stored result.
Outputs are compared exactly: the bytes a build of the new code would store against the
stored ones (:func:`~btbuild.sim.canonical.stored_same`), so a change in a float's last bit
re-runs the cell, as a clean build would store it.

A call that times out or hits another machine limit (``MemoryError``, ``RecursionError``)
proves nothing either way: the replay stops there and says so (``CellReplay.limited``), and
the verdict is ``unproven`` (a time-out is neither a match nor a difference).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from btbuild.execution.context import Context, UserRecords
from btbuild.execution.loader import Process
from btbuild.execution.runner import _merge
from btbuild.execution.start import streamed_deps
from btbuild.sim.calls import Failed, call_limited, fresh
from btbuild.sim.canonical import canonical, stored_same
from btbuild.storage.records import CellRecord
from btbuild.workspace.model import Target

if TYPE_CHECKING:
    from btbuild.sim.replay import CellInputsNow, Replayer

CALL_SECONDS = 30.0  # per replayed call: a real build has no limit, a proof must end


@dataclass(frozen=True)
class CellReplay:
    contexts: int
    counterexample: dict[str, Any] | None = None
    limited: str = ""  # why this replay proves nothing (a call timed out...), or ""


def _call(replayer: Replayer, process: Process, ctx: Context) -> Any:
    """The call, traced when the replay is (only the call: tracing the reading and merging
    of the real data too would cost several times the calls)."""
    trace = replayer.trace
    if trace is None:
        return call_limited(process, ctx, CALL_SECONDS)

    def traced(ctx: Context) -> Any:
        with trace():
            return process(ctx)

    return call_limited(traced, ctx, CALL_SECONDS)


def _limited(target: Target, day: date, user: str | None, new: Any) -> str:
    """Why the replayed outcome ``new`` proves nothing, or ""."""
    if not isinstance(new, Failed) or not new.limited:
        return ""
    where = f"{target.label} on the stored cell {day.isoformat()}" + (
        f" user {user}" if user is not None else ""
    )
    if new.kind == "timeout":
        return (
            f"replay of {where} timed out (no answer within {CALL_SECONDS:g} s of CPU time); "
            "a time-out depends on the machine's load, so it proves nothing"
        )
    return f"replay of {where} raised {new.kind}; it depends on the machine, so it proves nothing"


def _shown(value: Any) -> Any:
    if isinstance(value, Failed):
        return {"$raised": value.kind, "message": value.message}
    return canonical(value)


def replay_cell(
    replayer: Replayer,
    target: Target,
    record: CellRecord,
    inputs: CellInputsNow,
    factory: Any,
    why: str,
) -> CellReplay:
    day = date.fromisoformat(record.date)
    ctx = _context(replayer, target, day, inputs, record)
    try:
        process = factory()
    except Exception as exc:  # noqa: BLE001 - a calculation whose setup fails differs from any result
        return CellReplay(
            1,
            _counter(
                replayer,
                target,
                day,
                None,
                why,
                inputs,
                record,
                Failed(type(exc).__name__, str(exc)),
            ),
        )
    if target.kind == "per_date":
        new = _call(replayer, process, ctx)
        _lost_input(ctx)
        limited = _limited(target, day, None, new)
        if limited:
            return CellReplay(1, limited=limited)
        # what the old code stored, exactly: a result replaced since raises ResultMovedOn
        stored = replayer.backend.read_expected(target.name, record.date, record.result_hash)
        if isinstance(new, Failed) or not stored_same(new, stored):
            counter = _counter(replayer, target, day, None, why, inputs, stored, new)
            if target.historical:
                counter["inputs"]["previous_value"] = canonical(ctx.previous)
            return CellReplay(1, counter)
        return CellReplay(1)
    return _per_user(replayer, target, record, inputs, process, ctx, why)


def _lost_input(ctx: Context) -> None:
    """Raise what reading a ``stream_deps`` dep met while the calculation ran, whatever the
    calculation did with it (as the build does: runner.lost_input): a dep replaced
    meanwhile or damaged is no evidence, never a difference of the new code."""
    error = next((dep.error for dep in streamed_deps(ctx) if dep.error is not None), None)
    if error is not None:
        raise error


def _context(
    replayer: Replayer, target: Target, day: date, inputs: CellInputsNow, record: CellRecord
) -> Context:
    """The cell's context over exactly the inputs its stored result was computed from (each
    read against the recorded result hash: one replaced since raises ResultMovedOn)."""
    backend = replayer.backend
    whole: dict[str, Any] = {}
    dep_names: dict[str, str] = {}
    for label, (dep, dep_day) in inputs.deps.items():
        dep_names[dep.name] = dep.name
        dep_names[label] = dep.name
        expected = record.dep_results.get(label)
        if target.stream_deps and dep.kind == "per_user":  # as the build reads it
            whole[dep.name] = backend.read_streamed(dep.name, dep_day.isoformat(), expected)
        elif target.kind == "per_date" or dep.kind == "per_date":
            whole[dep.name] = backend.read_expected(dep.name, dep_day.isoformat(), expected)
    previous = None
    if target.historical and target.kind == "per_date" and inputs.previous is not None:
        previous = backend.read_expected(
            target.name, inputs.previous.date, inputs.previous.result_hash
        )

    def load_root(source: str, when: date) -> Any:
        root = replayer.sources[source]
        return root.load(when) if root.available(when) else None

    return Context(
        target,
        day,
        root_loader=load_root,
        user_sources=_user_sources(replayer, target),
        dep_names=dep_names,
        whole_deps=whole,
        previous=previous,
        log=replayer.logs.logger(target.name),
    )


def _user_sources(replayer: Replayer, target: Target) -> frozenset[str]:
    return frozenset(s for s in target.all_roots if replayer.sources[s].scope == "user")


def _per_user(
    replayer: Replayer,
    target: Target,
    record: CellRecord,
    inputs: CellInputsNow,
    process: Process,
    ctx: Context,
    why: str,
) -> CellReplay:
    day = date.fromisoformat(record.date)
    part, parts = replayer.user_part(target, record)
    streams = _Streams(replayer, part, parts)
    today = [(s, streams.root(s, day)) for s in sorted(_user_sources(replayer, target))]
    history = [
        (s, back, streams.root(s, day - timedelta(days=back)))
        for s, _ in today
        for back in range(1, target.lookback_days(s) + 1)
    ]
    user_deps = [
        (dep.name, streams.result(dep.name, dep_day, record.dep_results.get(label)))
        for label, (dep, dep_day) in inputs.deps.items()
        if dep.kind == "per_user"
    ]
    previous_date = inputs.previous_date()
    previous = (
        streams.result(target.name, previous_date, inputs.previous.result_hash)
        if previous_date and inputs.previous is not None
        else None
    )
    stored = streams.result(target.name, day, record.result_hash)
    universe = {index for _, index in today} | {index for _, index in user_deps}
    contexts = 0
    for user_id, values in _merge(streams.iterators):
        if not universe.intersection(values) and stored not in values:
            continue
        ctx.user = UserRecords(
            ctx,
            user_id,
            {s: fresh(values.get(i)) for s, i in today},
            {(s, back): fresh(values.get(i)) for s, back, i in history},
        )
        ctx._user_deps = {name: fresh(values.get(i)) for name, i in user_deps}
        ctx.previous = fresh(values.get(previous)) if previous is not None else None
        new = _call(replayer, process, ctx) if universe.intersection(values) else None
        contexts += 1
        limited = _limited(target, day, user_id, new)
        if limited:
            return CellReplay(contexts, limited=limited)
        value = None if isinstance(new, Failed) else new
        if not stored_same(value, values.get(stored)):
            counter = _counter(replayer, target, day, user_id, why, inputs, values.get(stored), new)
            counter["inputs"].update(_user_inputs(ctx, today, history, values, parts))
            return CellReplay(contexts, counter)
    return CellReplay(contexts)


class _Streams:
    """The sorted (user, value) streams of one replayed per_user cell, restricted to a part."""

    def __init__(self, replayer: Replayer, part: int, parts: int):
        self.replayer, self.part, self.parts = replayer, part, parts
        self.iterators: list[Any] = []

    def _add(self, iterator: Any) -> int:
        self.iterators.append(iterator)
        return len(self.iterators) - 1

    def root(self, source: str, day: date) -> int:
        root = self.replayer.sources[source]
        if not root.available(day):
            return self._add(iter(()))
        if self.parts == 1:
            return self._add(root.users(day))
        return self._add(root.users_in_shard(day, self.part, self.parts))

    def result(self, name: str, day: date, expected: str | None) -> int:
        """A stored result's stream, read against ``expected`` (the hash the replayed cell
        recorded): one replaced since raises ResultMovedOn."""
        backend, iso = self.replayer.backend, day.isoformat()
        if self.parts == 1:
            return self._add(backend.iter_result(name, iso, expected))
        # only the part's users are parsed (every line is still checked against the record)
        return self._add(backend.iter_result(name, iso, expected, (self.part, self.parts)))


def _user_inputs(
    ctx: Context,
    today: list[tuple[str, int]],
    history: list[tuple[str, int, int]],
    values: dict[int, Any],
    parts: int,
) -> dict[str, Any]:
    look_back: dict[str, dict[str, Any]] = {}
    for source, back, index in history:
        look_back.setdefault(source, {})[f"{back} days ago"] = values.get(index)
    return {
        "user_records": {source: values.get(index) for source, index in today},
        "look_back": look_back,
        "user_deps": dict(ctx._user_deps),
        "previous_value": ctx.previous,
        "users_replayed": "all" if parts == 1 else f"one part in {parts} (hash of the user id)",
    }


def _counter(
    replayer: Replayer,
    target: Target,
    day: date,
    user: str | None,
    why: str,
    inputs: CellInputsNow,
    stored: Any,
    new: Any,
) -> dict[str, Any]:
    """A replay counterexample: the real (date, user), what the code saw, stored vs new."""
    date_roots = {
        source: {
            "days_with_data": [
                back
                for back in range(target.lookback_days(source) + 1)
                if replayer.fingerprint(source, day - timedelta(days=back)) is not None
            ],
            "looks_back": target.lookback_days(source),
        }
        for source in target.all_roots
        if replayer.sources[source].scope == "date"
    }
    previous = inputs.previous
    found: dict[str, Any] = {
        "found_by": "replay",
        "sample": why,
        "date": day.isoformat(),
        "user": user,
        "inputs": {
            "date_roots": date_roots,
            "deps": {
                label: {"date": dep_day.isoformat(), "kind": dep.kind}
                for label, (dep, dep_day) in sorted(inputs.deps.items())
            },
            "previous": (
                {"date": previous.date, "result_hash": previous.result_hash}
                if previous is not None
                else ("none: first day of the chain" if target.historical else None)
            ),
        },
        "stored": canonical(stored),
        "new": _shown(new),
        "command": f"btbuild explain {target.label} --date {day.isoformat()} --format json",
        "stored_command": f"btbuild show {target.label} --date {day.isoformat()}"
        + (f" --user {user}" if user is not None else ""),
    }
    return found
