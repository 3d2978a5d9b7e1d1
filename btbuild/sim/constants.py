"""Changed constants whose effect depends on the range of the data: never proven by samples.

A threshold moved (``worth > 401300`` -> ``worth > 401500``), a cap raised (``xs[:500]`` ->
``xs[:600]``), a band edge or a named limit edited (``LIMIT = 5`` -> ``8``): the old and the
new code differ only for inputs between the two values. When no replayed user and no
fabricated world falls there, every changed line runs, every branch goes both ways, every
output agrees, and the change used to be proven cosmetic while a clean build of the full data
stored other results (red team 24: 100 users, ``replay_users = 10``, one stored user in the
gap kept the old tier). Equal outputs on a sample say nothing about a range the sample never
reached, and no sample can be shown to reach it (the compared value is usually computed:
a worth, a count, a length), so such a change is ``unproven``: the cells re-run.

A constant counts when it sits where its value selects a range of the data:

* anywhere inside a comparison (``x > 1000``, ``x * 1.1 > cap``, ``n in (3, 5)``, a
  ``case 1000:`` pattern, a ``case n if n > 1000:`` guard; arithmetic
  on constants only counts as its value: ``1000 + 1000`` is 2000, ``3600 * 24`` 86400);
* a number anywhere in a subscript's slice or computed index (``xs[:500]``), a constant
  index beyond the fabricator's list lengths (``rows[500]``; a smaller one, ``pair[1]``,
  differs on every list long enough, and the literal worlds make lists of each small integer
  literal's length); a constant given directly as a call's argument (``min(x, 500)``,
  ``round(x, 2)``, ``range(10)``, ``nlargest(5, xs)``, ``d.get("gold", 0)``, a display of
  constants: ``band(x, [(0.25, "low")])``; a constant inside arithmetic given as an argument,
  ``round(sum(x ** 2 for x in xs), 6)``, changes every output of the line: not a range; nor
  is a key read, ``row["close"]``);
* anywhere in the value bound at module or class level (``CAP = 500``, a band table, a class
  attribute) or by a ``def``'s defaults and decorators;
* anywhere in a named constant a function binds (``cap = 300``: a value of constants only),
  and anywhere in the value a function binds to a plain name that it then reads in a
  comparison or a slice (``limit = base * 1.2`` ... ``if worth > limit``), transitively (an
  item or attribute store, ``counts[k] = counts.get(k, 0) + 1``, does not carry it, nor
  does a name only passed to a call, ``round(pnl, 2)``).

A constant of such a position in the changed statements of one version that appears nowhere
in the changed statements of the other version is a changed constant (both directions: a
removed cap matters as much as an added one). Constants only moved or regrouped (a literal
moved into a named constant, a loop turned into a comprehension, ``1 if thin else 0`` ->
``int(thin)``, ``"days": 1`` -> ``"days": 0`` plus one) are no change under this rule, and
constants of output values (``{"days": 1}``, ``return 0.0``) are not range-selecting: a
changed output value shows in every output of the line, which the coverage check runs.
So is a comparison moved across its constant (``n >= 5`` -> ``n > 5``: the versions differ
only where ``n`` is exactly 5, a computed count the sample may never hold): the constant is
in both versions, on the other side of the threshold in one of them (a negation, ``x > c`` ->
``x <= c`` with the branches swapped, or ``not``, keeps it on the same side: no change).
Zero is no range a sample misses (the standard worlds always hold zero, negative and positive
values and empty lists), so a counter's ``0`` may come and go.

Measured on the realistic corpus: every one of the 27 refactors keeps its constants (none is
flagged); 20 of its 37 behaviour changes are flagged (the others change no constant).
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from btbuild.sim.literals import SMALL_COUNT

Const = tuple[str, object]  # ("n", float) or ("s", str)
# zero is no range the samples can miss: the standard worlds always hold zero, negative and
# positive values and empty lists (edge worlds ``zero``, ``negative``, ``shorts``, ``empty``)
ZERO: Const = ("n", 0.0)


@dataclass(frozen=True)
class Found:
    """The constants of one statement's own text (its header for a compound statement)."""

    every: frozenset[Const] = frozenset()  # all of them
    ranged: frozenset[Const] = frozenset()  # those in range-selecting positions
    bound: frozenset[Const] = frozenset()  # those of the value it binds (assignments)
    ranged_names: frozenset[str] = frozenset()  # names it reads in range-selecting positions
    value_names: frozenset[str] = frozenset()  # names the bound value reads
    named: bool = False  # it binds plain names only (not ``counts[k] = ...``, ``self.x = ...``)
    # (side, constant) of each comparison with a constant: ``x > 5`` is ("<=", 5) (_SIDES)
    pairs: frozenset[tuple[str, Const]] = frozenset()
    pure: bool = False  # the bound value is only constants


def _const(node: ast.AST) -> Const | None:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        return _const(node.operand)
    if not isinstance(node, ast.Constant) or isinstance(node.value, bool):
        return None
    if isinstance(node.value, (int, float)):
        return ("n", float(node.value))
    if isinstance(node.value, str):
        return ("s", node.value)
    return None


# the side of a threshold a comparison puts the constant on (a negation is the same
# threshold: ``x > c`` and ``x <= c`` split the data at the same place)
_SIDES = {ast.Lt: "<", ast.GtE: "<", ast.Gt: "<=", ast.LtE: "<=", ast.Eq: "==", ast.NotEq: "=="}
_FLIPPED = {ast.Lt: "<=", ast.GtE: "<=", ast.Gt: "<", ast.LtE: "<", ast.Eq: "==", ast.NotEq: "=="}


class _Walker:
    def __init__(self) -> None:
        self.every: set[Const] = set()
        self.ranged: set[Const] = set()
        self.names: set[str] = set()
        self.pairs: set[tuple[str, Const]] = set()

    def compare(self, node: ast.Compare) -> None:
        """Where each comparison with a constant splits the data: ``x > 5``, ``x <= 5``,
        ``5 >= x`` and ``not x > 5`` split at 5 with 5 below (``"<="``); ``x >= 5`` with 5
        above (``"<"``)."""
        sides = [node.left, *node.comparators]
        for op, left, right in zip(node.ops, sides, sides[1:], strict=False):
            constant, side = _value(right), _SIDES.get(type(op))
            if constant is None:
                constant, side = _value(left), _FLIPPED.get(type(op))
            if constant is not None and side is not None:
                self.pairs.add((side, constant))

    def walk(self, node: ast.AST, ranged: bool = False, numbers: bool = False) -> None:
        """``ranged``: everything here selects a range; ``numbers``: the numbers do."""
        const = _const(node)
        folded = _fold(node) if const is None and isinstance(node, ast.BinOp) else None
        if folded is not None:  # ``1000 + 1000`` is the constant 2000 (its parts: only seen)
            self.every.update(c for c in map(_const, ast.walk(node)) if c is not None)
            const = ("n", folded)
        if const is not None:
            self.every.add(const)
            if ranged or (numbers and const[0] == "n"):
                self.ranged.add(const)
            return
        if isinstance(node, ast.JoinedStr):
            return  # an f-string's text is an output, not a range
        if isinstance(node, ast.Name) and (ranged or numbers):
            self.names.add(node.id)  # read in a comparison or a slice
        if isinstance(node, ast.MatchValue):  # ``case 1000:`` compares with 1000
            self.walk(node.value, True, True)
            return
        if isinstance(node, ast.Compare):
            self.compare(node)
            for child in (node.left, *node.comparators):
                self.walk(child, True, True)
        elif isinstance(node, ast.Subscript):
            self.walk(node.value, ranged, numbers)
            index = _const(node.slice)
            if index is not None and index[0] == "n" and abs(float(index[1])) <= SMALL_COUNT:  # type: ignore[arg-type]  # a number's value is a float
                self.every.add(index)  # one element: differs on every list long enough
            else:
                self.walk(node.slice, ranged, True)
        elif isinstance(node, ast.Call):
            self.walk(node.func, ranged, numbers)
            for arg in (*node.args, *(k.value for k in node.keywords)):
                self.walk(arg, ranged or _direct(arg), numbers)
        else:
            for inner in ast.iter_child_nodes(node):
                self.walk(inner, ranged, numbers)


_OPERATORS: dict[type[ast.operator], Callable[[float, float], float | None]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.FloorDiv: lambda a, b: a // b,
    ast.Mod: lambda a, b: a % b,
    ast.Pow: lambda a, b: a**b if abs(b) <= 64 and abs(a) < 1e6 else None,
}


def _fold(node: ast.AST) -> float | None:
    """The value of arithmetic on number constants only (None for anything else)."""
    const = _const(node)
    if const is not None:
        if const[0] != "n":
            return None
        sign = -1.0 if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) else 1.0
        return sign * float(const[1])  # type: ignore[arg-type]  # a number's value is a float
    if not isinstance(node, ast.BinOp) or type(node.op) not in _OPERATORS:
        return None
    left, right = _fold(node.left), _fold(node.right)
    if left is None or right is None:
        return None
    try:
        value = _OPERATORS[type(node.op)](left, right)
    except (ArithmeticError, ValueError):
        return None
    return abs(float(value)) if isinstance(value, (int, float)) else None


def _value(node: ast.AST) -> Const | None:
    """A constant, or arithmetic on number constants as its value."""
    const = _const(node)
    if const is not None:
        return const
    folded = _fold(node) if isinstance(node, ast.BinOp) else None
    return ("n", folded) if folded is not None else None


def _direct(arg: ast.AST) -> bool:
    """A constant given directly (or in a display given directly) as an argument."""
    if isinstance(arg, (ast.Tuple, ast.List, ast.Set)):
        return all(_direct(e) for e in arg.elts)
    return _const(arg) is not None


def _pure(value: ast.AST) -> bool:
    """Only constants: a named constant (``cap = 300``, ``bands = [(0.25, "low")]``)."""
    allowed = (ast.Constant, ast.Tuple, ast.List, ast.Set, ast.Dict, ast.UnaryOp, ast.BinOp)
    return all(
        isinstance(node, (*allowed, ast.operator, ast.unaryop, ast.expr_context))
        for node in ast.walk(value)
    )


def _bound_value(node: ast.AST) -> ast.AST | None:
    if isinstance(node, (ast.Assign, ast.AugAssign)) or (
        isinstance(node, ast.AnnAssign) and node.value is not None
    ):
        return node.value
    return None


def found(node: ast.AST, parts: Iterable[ast.AST]) -> Found:
    """The constants of a statement whose own text is ``parts`` (its header for a compound
    statement); ``bound`` holds those of the value it binds, which count when the name is
    read where it selects a range (always at module or class level)."""
    walker = _Walker()
    for part in parts:
        walker.walk(part)
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        defaults: list[ast.AST] = list(node.decorator_list)
        if not isinstance(node, ast.ClassDef):
            defaults += [*node.args.defaults, *(d for d in node.args.kw_defaults if d)]
        for default in defaults:  # evaluated once, read by every call
            walker.walk(default, True, True)
    value = _bound_value(node)
    bound: set[Const] = set()
    value_names: set[str] = set()
    if value is not None:
        inner = _Walker()
        inner.walk(value, True, True)
        bound = inner.every
        value_names = {n.id for n in ast.walk(value) if isinstance(n, ast.Name)}
    return Found(
        every=frozenset(walker.every),
        ranged=frozenset(walker.ranged),
        bound=frozenset(bound),
        ranged_names=frozenset(walker.names),
        value_names=frozenset(value_names),
        named=all(isinstance(t, ast.Name) for t in _targets(node)) if value is not None else False,
        pure=value is not None and _pure(value),
        pairs=frozenset(walker.pairs),
    )


def _targets(node: ast.AST) -> list[ast.AST]:
    if isinstance(node, ast.Assign):
        return list(node.targets)
    return [node.target] if isinstance(node, (ast.AnnAssign, ast.AugAssign)) else []


def ranged_names(items: Iterable[tuple[Found, frozenset[str]]]) -> frozenset[str]:
    """The names a function reads in range-selecting positions, and, transitively, the names
    read by the values bound to them (``items``: each statement's constants and the names it
    binds)."""
    pairs = list(items)
    names: set[str] = set().union(*(f.ranged_names for f, _ in pairs)) if pairs else set()
    grew = True
    while grew:
        grew = False
        for facts, binds in pairs:
            if facts.named and not binds.isdisjoint(names) and not facts.value_names <= names:
                names |= facts.value_names
                grew = True
    return frozenset(names)


Where = tuple[str, int]  # (shown path, line)


def _constants(
    side: Any, reachable: Callable[[Any], set[tuple[str, str]]]
) -> tuple[dict[Const, Where], set[Const], dict[tuple[str, Const], Where]]:
    """The range-selecting constants of the side's changed statements (with where the first
    is) and all their constants; only statements that matter: in reachable functions, or
    binding (or changing in place) a name a reachable function reads."""
    reach = reachable(side)
    reads = {name for key in reach for item in side.units[key].items for name in item.loads}
    ranged: dict[Const, Where] = {}
    every: set[Const] = set()
    pairs: dict[tuple[str, Const], Where] = {}
    for key in sorted(side.units):
        unit, changed = side.units[key], side.changed.get(key, set())
        if not changed or (unit.kind == "function" and key not in reach):
            continue
        names = None
        if unit.kind == "function":
            names = ranged_names((item.consts, item.binds) for item in unit.items)
        for index in sorted(changed):
            item = unit.items[index]
            if names is None and (item.binds | item.mutates).isdisjoint(reads):
                continue
            every |= item.consts.every
            found_here = set(item.consts.ranged)
            if names is None or (
                item.consts.named and (item.consts.pure or not item.binds.isdisjoint(names))
            ):
                found_here |= item.consts.bound
            for const in sorted(found_here - {ZERO}, key=repr):
                ranged.setdefault(const, (key[0], item.line))
            for pair in sorted(item.consts.pairs, key=repr):
                pairs.setdefault(pair, (key[0], item.line))
    return ranged, every, pairs


def changed_constants(
    old: Any, new: Any, reachable: Callable[[Any], set[tuple[str, str]]]
) -> tuple[str, ...]:
    """The reasons for the range-selecting constants of one version's changed statements that
    the other version's changed statements lack (``old`` and ``new``: the sides of
    :func:`btbuild.sim.changes.code_change`)."""
    old_ranged, old_every, old_pairs = _constants(old, reachable)
    new_ranged, new_every, new_pairs = _constants(new, reachable)
    why = "a threshold, a cap or a limit changed: outputs agreeing on the sampled data do not show the values between"
    reasons = [
        f"unproven: the constant {show(const)} at {path}:{line} is new ({why})"
        for const, (path, line) in new_ranged.items()
        if const not in old_every
    ]
    reasons += [
        f"unproven: the constant {show(const)} at {path}:{line} of the old code is gone ({why})"
        for const, (path, line) in old_ranged.items()
        if const not in new_every
    ]
    for pairs, other, suffix in ((new_pairs, old_pairs, ""), (old_pairs, new_pairs, " (old code)")):
        reasons += [  # the same constant, another operator: ``n >= 5`` -> ``n > 5``
            f"unproven: the comparison with {show(const)} at {path}:{line}{suffix} moved to its "
            "other side (``>`` for ``>=``: outputs agreeing on the sampled data do not show "
            "the values equal to it)"
            for (op, const), (path, line) in pairs.items()
            if const != ZERO and (op, const) not in other and any(c == const for _, c in other)
        ]
    return tuple(reasons)


def show(const: Const) -> str:
    kind, value = const
    if kind == "s":
        return repr(value)
    number = float(value)  # type: ignore[arg-type]  # a number's value is a float
    return str(int(number)) if number.is_integer() and abs(number) < 1e15 else repr(number)


__all__ = ["Const", "Found", "changed_constants", "found", "ranged_names", "show"]
