"""Coverage of the change: what changed (per function, layers included), and the verdict."""

from __future__ import annotations

import sys
from pathlib import Path

from sim_helpers import VALUE, write_workspace

from btbuild.session import Session
from btbuild.sim.changes import VersionFiles, code_change
from btbuild.sim.coverage import ChangeCoverage, Tracer
from btbuild.sim.suspend import untraced
from btbuild.sim.verify import COSMETIC, UNPROVEN, VerifyOptions, compare_workspaces
from btbuild.workspace.config import load_workspace

LAYER = """\
def used(x):
    return x * 2


def unused(x):
    return x + 1
"""

ENTRY = """\
from layers.helpers import used

LIMIT = 3


def calc(ctx):
    total = 0
    for item in ctx.user["portfolio"]["positions"]:
        total += used(item["quantity"])
    if total > LIMIT:
        return total
    return None
"""


def version(root: Path, entry: str = ENTRY, layer: str = LAYER) -> VersionFiles:
    (root / "layers").mkdir(parents=True, exist_ok=True)
    (root / "calculations").mkdir(exist_ok=True)
    (root / "layers" / "__init__.py").write_text("")
    (root / "layers" / "helpers.py").write_text(layer)
    (root / "calculations" / "calc.py").write_text(entry)
    path = root / "calculations" / "calc.py"
    files = (path, root / "layers" / "__init__.py", root / "layers" / "helpers.py")
    return VersionFiles(root, path, "calc", files)


def required(change: object, side: str) -> dict[str, list[int]]:
    lines = change.new_lines if side == "new" else change.old_lines  # type: ignore[attr-defined]
    files = change.new if side == "new" else change.old  # type: ignore[attr-defined]
    return {files.shown(p): sorted(found) for p, found in lines.items() if found}


def test_renamed_locals_and_reformatting_are_no_change(tmp_path: Path) -> None:
    renamed = ENTRY.replace("total", "acc").replace("item", "position")
    change = code_change(version(tmp_path / "a"), version(tmp_path / "b", renamed))
    assert change.empty


def test_a_changed_constant_makes_its_readers_changed(tmp_path: Path) -> None:
    change = code_change(
        version(tmp_path / "a"), version(tmp_path / "b", ENTRY.replace("LIMIT = 3", "LIMIT = 4"))
    )
    assert required(change, "new") == {"calculations/calc.py": [10]}
    assert required(change, "old") == {"calculations/calc.py": [10]}


def test_changed_statements_per_version(tmp_path: Path) -> None:
    new = ENTRY.replace(
        "        return total\n", "        total = round(total, 2)\n        return total\n"
    )
    change = code_change(version(tmp_path / "a"), version(tmp_path / "b", new))
    # line 12 reads the total line 11 changed (line 10, before it and in no loop, does not)
    assert required(change, "new") == {"calculations/calc.py": [11, 12]}
    assert required(change, "old") == {}


def test_layer_functions_count_only_when_reachable(tmp_path: Path) -> None:
    old = version(tmp_path / "a")
    unreachable = code_change(old, version(tmp_path / "b", layer=LAYER.replace("x + 1", "x + 2")))
    assert unreachable.empty
    reachable = code_change(old, version(tmp_path / "c", layer=LAYER.replace("x * 2", "2 * x")))
    # the changed helper's line, and in the entry what reads its value: the call (9) and the
    # readers of the total it feeds (10, 11)
    calls = {"layers/helpers.py": [2], "calculations/calc.py": [9, 10, 11]}
    assert required(reachable, "new") == calls
    assert required(reachable, "old") == calls


def test_suspending_the_tracer_keeps_the_running_frame_traced(tmp_path: Path) -> None:
    module = tmp_path / "traced_mod.py"
    module.write_text(
        "def f(get):\n    total = 0\n    for b in range(3):\n        total += get(b)\n    return total\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        import traced_mod  # type: ignore[import-not-found]

        def get(b: int) -> int:
            with untraced():
                return b

        tracer = Tracer((module,))
        with tracer.tracing():
            traced_mod.f(get)
        assert tracer.gaps(module, frozenset({2, 3, 4, 5})) == []
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("traced_mod", None)


def test_a_branch_never_taken_is_unproven_with_its_line(tmp_path: Path) -> None:
    old = write_workspace(tmp_path / "old")
    clamp = VALUE.replace(
        '    return {"invested"',
        '    if invested > 1e300:\n        invested = 1e300\n    return {"invested"',
    )
    new = write_workspace(tmp_path / "new", value=clamp)
    report = compare_workspaces(
        Session(new), load_workspace(old), VerifyOptions(base="t", search_seconds=0.2)
    )
    (change,) = [c for c in report.changed if c.label == "//book:value"]
    assert change.verdict == UNPROVEN
    assert change.reason == (
        "unproven: branch at calculations/book/value.py:10 never jumps to line 11"
    )
    assert not report.ok


def test_covered_change_is_cosmetic(tmp_path: Path) -> None:
    old = write_workspace(tmp_path / "old")
    rewrite = VALUE.replace(
        'return 0.0 if bar is None else position["quantity"] * bar["close"]',
        'if bar is None:\n        return 0.0\n    return bar["close"] * position["quantity"]',
    )
    new = write_workspace(tmp_path / "new", value=rewrite)
    session = Session(new)
    check = ChangeCoverage.between(
        load_workspace(old).targets["value"],
        load_workspace(old),
        session.workspace.targets["value"],
        session.workspace,
    )
    assert not check.empty
    report = compare_workspaces(
        session, load_workspace(old), VerifyOptions(base="t", search_seconds=0.2)
    )
    (change,) = [c for c in report.changed if c.label == "//book:value"]
    assert change.verdict == COSMETIC, change.reason


def test_probes_record_conditions_inside_changed_lines_without_changing_values(
    tmp_path: Path,
) -> None:
    from btbuild.sim.probes import Probes

    path = tmp_path / "cond.py"
    path.write_text(
        "def f(x, xs):\n"
        "    a = (x or 'none') if x != 3 else [v for v in xs if v]\n"
        "    return a, x and 'yes'\n"
    )
    probes = Probes({path: frozenset({2})})  # line 3 did not change: not probed
    namespace: dict[str, object] = {}
    probes.prime(namespace)
    exec(probes.compile(path.read_bytes(), path), namespace)
    f = namespace["f"]
    assert f(0, []) == ("none", 0) and f(5, []) == (5, 5 and "yes")  # type: ignore[operator]
    kinds = {(key[2], outcome) for _, key, outcome in probes.gaps({path: frozenset({2})})}
    # x != 3 never false; the filter never ran; `x or` was true (5) and false (0)
    assert kinds == {("if", False), ("filter", True), ("filter", False)}
    assert f(3, [0, 1]) == ([1], 3 and "yes")  # type: ignore[operator]
    assert probes.gaps({path: frozenset({2})}) == []
    assert Probes({path: frozenset({3})}).gaps({path: frozenset({3})})  # never loaded: gaps


def test_a_change_behind_a_condition_inside_a_line_is_unproven(tmp_path: Path) -> None:
    """Red team: a change hidden behind ``a if c else b`` on one line (a rare user, a date)
    ran on every fabricated world and replayed cell without ever meeting ``c``; line coverage
    was satisfied and the change was skipped as cosmetic, with stale results for that user."""
    old = write_workspace(tmp_path / "old")
    rewrite = VALUE.replace(
        '"worth": invested + book["cash"]',
        '"worth": (invested + book["cash"]) * (2 if ctx.user.id == "u999999" else 1)',
    )
    new = write_workspace(tmp_path / "new", value=rewrite)
    session = Session(new)
    try:
        report = compare_workspaces(
            session, load_workspace(old), VerifyOptions(base="t", search_seconds=0.2)
        )
    finally:
        session.close()
    (change,) = [c for c in report.changed if c.label == "//book:value"]
    assert change.verdict == UNPROVEN, change.reason
    assert change.reason.endswith("is never true (a branch inside the line)"), change.reason


def test_a_module_level_call_mutating_a_name_makes_its_readers_changed(tmp_path: Path) -> None:
    """Red team: a layer's ``VIP.update({"u001999"})`` edited to another user binds no name,
    so nothing reading ``VIP`` had to run both ways: the change was empty for coverage, the
    fabricated users were never VIP and the replay (200 of 2,000 users a date) missed both
    users: skipped as cosmetic, with stale results for them."""
    entry = ENTRY.replace("LIMIT = 3", "LIMIT = set()\nLIMIT.update({3})").replace(
        "if total > LIMIT:", "if total in LIMIT:"
    )
    change = code_change(
        version(tmp_path / "a", entry), version(tmp_path / "b", entry.replace("{3}", "{4}"))
    )
    assert required(change, "new") == {"calculations/calc.py": [11]}
    assert required(change, "old") == {"calculations/calc.py": [11]}


def test_statements_reading_a_changed_value_are_changed(tmp_path: Path) -> None:
    """Red team: ``bonus = cash * 0.1`` edited to ``* 0.2`` runs for every user, but its
    value surfaces only under an unchanged ``if ctx.user.id == "u000500":`` (2,000 users, 200
    replayed a date): coverage of the changed line passed, the SimHash and the replay agreed,
    and the change was skipped as cosmetic with stale results for that user. The statements
    reading what a changed statement binds (later, or anywhere in its loop) must run too."""
    entry = ENTRY.replace(
        "    if total > LIMIT:",
        "    bonus = total * 0.1\n    if ctx.user.id == 'u000500':\n        total += bonus\n"
        "    if total > LIMIT:",
    )
    change = code_change(
        version(tmp_path / "a", entry), version(tmp_path / "b", entry.replace("0.1", "0.2"))
    )
    # bonus = (10), total += bonus (12), then what reads total: if (13), return total (14)
    assert required(change, "new") == {"calculations/calc.py": [10, 12, 13, 14]}
    looped = ENTRY.replace("total += used(", "total += 0.5 * used(")
    change = code_change(version(tmp_path / "c"), version(tmp_path / "d", looped))
    # the loop's reads, and what the changed line passes its value to (the helper's line)
    assert required(change, "new") == {
        "calculations/calc.py": [9, 10, 11],
        "layers/helpers.py": [2],
    }


def test_callers_reading_a_changed_functions_value_are_changed(tmp_path: Path) -> None:
    """Red team: ``b = bonus_of(cash)`` runs for every user; ``bonus_of``'s body edited, its
    value surfaces only under an unchanged rare condition: the callers reading a changed
    function's value count as changed (to a fixed point over functions)."""
    entry = ENTRY.replace(
        "def calc(ctx):\n",
        "def bonus_of(t):\n    return t * 0.1\n\n\ndef calc(ctx):\n",
    ).replace(
        "    if total > LIMIT:",
        "    b = bonus_of(total)\n    if ctx.user.id == 'u000500':\n        total += b\n"
        "    if total > LIMIT:",
    )
    change = code_change(
        version(tmp_path / "a", entry), version(tmp_path / "b", entry.replace("0.1", "0.2"))
    )
    # bonus_of's line (7), b = (14), total += b (16), if (17), return total (18)
    assert required(change, "new") == {"calculations/calc.py": [7, 14, 16, 17, 18]}
