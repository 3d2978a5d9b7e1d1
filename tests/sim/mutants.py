"""Mutants of the corpus calculations, made with libcst.

Operators: arithmetic (+ - * / swapped), comparison (< <= > >= == != swapped), constant
(an int n -> n + 1, a float x -> x * 2, or 1.0 when x is 0), boolean (and/or swapped,
True/False swapped, ``not`` dropped) and removed statement (a simple statement in a
function body becomes ``pass``; ``return`` statements are kept, removing them is trivially
killed). Each mutant changes exactly one site.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import libcst as cst

SWAPS: dict[type, type] = {
    cst.Add: cst.Subtract,
    cst.Subtract: cst.Add,
    cst.Multiply: cst.Divide,
    cst.Divide: cst.Multiply,
    cst.LessThan: cst.LessThanEqual,
    cst.LessThanEqual: cst.LessThan,
    cst.GreaterThan: cst.GreaterThanEqual,
    cst.GreaterThanEqual: cst.GreaterThan,
    cst.Equal: cst.NotEqual,
    cst.NotEqual: cst.Equal,
    cst.And: cst.Or,
    cst.Or: cst.And,
}


@dataclass(frozen=True)
class Mutant:
    name: str  # target
    site: int
    kind: str
    description: str
    source: str

    @property
    def key(self) -> str:
        return f"{self.name}#{self.site}"


class _Mutator(cst.CSTTransformer):
    def __init__(self, target_site: int):
        self.target_site = target_site
        self.site = -1
        self.kind = ""
        self.description = ""
        self.depth = 0

    def _hit(self, kind: str, description: str) -> bool:
        self.site += 1
        if self.site == self.target_site:
            self.kind, self.description = kind, description
            return True
        return False

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        self.depth += 1
        return True

    def leave_FunctionDef(
        self, original: cst.FunctionDef, updated: cst.FunctionDef
    ) -> cst.FunctionDef:
        self.depth -= 1
        return updated

    def _swap(self, operator: cst.CSTNode, kind: str) -> cst.CSTNode | None:
        swapped = SWAPS.get(type(operator))
        if swapped is None or not self._hit(
            kind, f"{type(operator).__name__} -> {swapped.__name__}"
        ):
            return None
        return swapped()

    def leave_BinaryOperation(
        self, original: cst.BinaryOperation, updated: cst.BinaryOperation
    ) -> cst.BaseExpression:
        new = self._swap(updated.operator, "arithmetic")
        return updated.with_changes(operator=new) if new is not None else updated

    def leave_AugAssign(self, original: cst.AugAssign, updated: cst.AugAssign) -> cst.AugAssign:
        pairs = {cst.AddAssign: cst.SubtractAssign, cst.SubtractAssign: cst.AddAssign}
        swapped = pairs.get(type(updated.operator))
        if swapped is not None and self._hit(
            "arithmetic", f"{type(updated.operator).__name__} -> {swapped.__name__}"
        ):
            return updated.with_changes(operator=swapped())
        return updated

    def leave_ComparisonTarget(
        self, original: cst.ComparisonTarget, updated: cst.ComparisonTarget
    ) -> cst.ComparisonTarget:
        new = self._swap(updated.operator, "comparison")
        return updated.with_changes(operator=new) if new is not None else updated

    def leave_BooleanOperation(
        self, original: cst.BooleanOperation, updated: cst.BooleanOperation
    ) -> cst.BaseExpression:
        new = self._swap(updated.operator, "boolean")
        return updated.with_changes(operator=new) if new is not None else updated

    def leave_UnaryOperation(
        self, original: cst.UnaryOperation, updated: cst.UnaryOperation
    ) -> cst.BaseExpression:
        if isinstance(updated.operator, cst.Not) and self._hit("boolean", "not dropped"):
            return updated.expression
        return updated

    def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.BaseExpression:
        if updated.value in ("True", "False") and self._hit("boolean", f"{updated.value} swapped"):
            return cst.Name("False" if updated.value == "True" else "True")
        return updated

    def leave_Integer(self, original: cst.Integer, updated: cst.Integer) -> cst.BaseExpression:
        if self.depth and self._hit("constant", f"{updated.value} -> +1"):
            return cst.Integer(str(int(updated.value) + 1))
        return updated

    def leave_Float(self, original: cst.Float, updated: cst.Float) -> cst.BaseExpression:
        if self.depth and self._hit("constant", f"{updated.value} -> changed"):
            value = float(updated.value)
            return cst.Float(repr(value * 2 if value else 1.0))
        return updated

    def leave_SimpleStatementLine(
        self, original: cst.SimpleStatementLine, updated: cst.SimpleStatementLine
    ) -> cst.SimpleStatementLine:
        if not self.depth or any(
            isinstance(s, (cst.Return, cst.Pass, cst.Expr)) for s in updated.body
        ):
            return updated
        if self._hit("removed statement", cst.Module([]).code_for_node(updated).strip()[:60]):
            return updated.with_changes(body=[cst.Pass()])
        return updated


def mutants(name: str, source: str) -> Iterator[Mutant]:
    module = cst.parse_module(source)
    site = 0
    while True:
        mutator = _Mutator(site)
        mutated = module.visit(mutator)
        if mutator.site < site:
            return
        yield Mutant(name, site, mutator.kind, mutator.description, mutated.code)
        site += 1
