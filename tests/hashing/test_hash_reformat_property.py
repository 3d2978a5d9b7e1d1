"""Property: any cosmetic reformatting of a calculation keeps its code hash.

The reformatter below is a small libcst transformer driven by a seeded random generator:
it adds comments and blank lines, wraps expressions in (possibly multi-line) parentheses,
adds trailing commas and flips quote styles — what black, an editor or a reviewer does.
"""

from __future__ import annotations

import ast
import random
from pathlib import Path

import libcst as cst
from hypothesis import given, settings
from hypothesis import strategies as st

from btbuild.hashing import code_hash

CASES = Path(__file__).parent / "cases"

SAMPLE = '''\
"""Portfolio risk for one user."""
import math
from collections import defaultdict

WINDOW = 30


class PortfolioRisk:
    """Volatility-weighted exposure."""

    def process(self, ctx):
        positions = ctx.user["portfolio"]
        prices = ctx.root("prices")
        exposure = defaultdict(float)
        for position in positions:
            symbol, qty = position["symbol"], position["qty"]
            exposure[symbol] += qty * prices[symbol]["close"]
        total = sum(value for value in exposure.values())
        if not total:
            return None
        weights = {s: v / total for s, v in exposure.items() if v}
        vol = math.sqrt(sum(w * w for w in weights.values()))
        label = 'high' if vol > 0.5 else "low"
        return {"risk": round(vol * WINDOW, 6), "label": label, "top": sorted(weights)[:3]}
'''


def _sources() -> list[str]:
    files = sorted(CASES.glob("*/*/*.py"))
    return [SAMPLE, *(path.read_text(encoding="utf-8") for path in files)]


SOURCES = _sources()


class RandomReformatter(cst.CSTTransformer):
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def _chance(self, p: float = 0.3) -> bool:
        return self.rng.random() < p

    def _comment(self) -> cst.Comment:
        return cst.Comment(f"# note {self.rng.randint(0, 999)}")

    def _leading(
        self, lines: tuple[cst.EmptyLine, ...] | list[cst.EmptyLine]
    ) -> list[cst.EmptyLine]:
        extra = []
        if self._chance():
            extra.append(cst.EmptyLine())
        if self._chance():
            extra.append(cst.EmptyLine(comment=self._comment()))
        return [*extra, *lines]

    def _wrap(self, node: cst.BaseExpression) -> cst.BaseExpression:
        if not self._chance(0.25):
            return node
        if self._chance(0.5):
            left = cst.LeftParen(
                whitespace_after=cst.ParenthesizedWhitespace(
                    first_line=cst.TrailingWhitespace(),
                    indent=False,
                    last_line=cst.SimpleWhitespace("        "),
                )
            )
        else:
            left = cst.LeftParen()
        return node.with_changes(lpar=[left, *node.lpar], rpar=[*node.rpar, cst.RightParen()])

    def leave_SimpleStatementLine(self, original_node, updated_node):  # type: ignore[no-untyped-def]
        changes: dict[str, object] = {"leading_lines": self._leading(updated_node.leading_lines)}
        if self._chance() and updated_node.trailing_whitespace.comment is None:
            changes["trailing_whitespace"] = cst.TrailingWhitespace(
                whitespace=cst.SimpleWhitespace("  "), comment=self._comment()
            )
        return updated_node.with_changes(**changes)

    def leave_FunctionDef(self, original_node, updated_node):  # type: ignore[no-untyped-def]
        return updated_node.with_changes(leading_lines=self._leading(updated_node.leading_lines))

    def leave_ClassDef(self, original_node, updated_node):  # type: ignore[no-untyped-def]
        return updated_node.with_changes(leading_lines=self._leading(updated_node.leading_lines))

    def leave_BinaryOperation(self, original_node, updated_node):  # type: ignore[no-untyped-def]
        return updated_node.with_changes(
            left=self._wrap(updated_node.left), right=self._wrap(updated_node.right)
        )

    def leave_Return(self, original_node, updated_node):  # type: ignore[no-untyped-def]
        if updated_node.value is None:
            return updated_node
        return updated_node.with_changes(value=self._wrap(updated_node.value))

    def leave_Assign(self, original_node, updated_node):  # type: ignore[no-untyped-def]
        return updated_node.with_changes(value=self._wrap(updated_node.value))

    def leave_Arg(self, original_node, updated_node):  # type: ignore[no-untyped-def]
        return updated_node.with_changes(value=self._wrap(updated_node.value))

    def leave_Call(self, original_node, updated_node):  # type: ignore[no-untyped-def]
        args = list(updated_node.args)
        if not args or not self._chance(0.5) or args[-1].comma is not cst.MaybeSentinel.DEFAULT:
            return updated_node
        if (
            len(args) == 1
            and isinstance(args[0].value, cst.GeneratorExp)
            and not args[0].value.lpar
        ):
            return updated_node  # f(x for x in y,) is a syntax error
        args[-1] = args[-1].with_changes(comma=cst.Comma())
        return updated_node.with_changes(args=args)

    def _trailing_comma(self, updated_node):  # type: ignore[no-untyped-def]
        elements = list(updated_node.elements)
        if (
            not elements
            or not self._chance(0.5)
            or elements[-1].comma is not cst.MaybeSentinel.DEFAULT
        ):
            return updated_node
        if (
            isinstance(elements[-1], (cst.StarredElement, cst.StarredDictElement))
            and isinstance(updated_node, cst.Tuple)
            and not updated_node.lpar
        ):
            return updated_node
        elements[-1] = elements[-1].with_changes(comma=cst.Comma())
        return updated_node.with_changes(elements=elements)

    def leave_List(self, original_node, updated_node):  # type: ignore[no-untyped-def]
        return self._trailing_comma(updated_node)

    def leave_Dict(self, original_node, updated_node):  # type: ignore[no-untyped-def]
        return self._trailing_comma(updated_node)

    def leave_Set(self, original_node, updated_node):  # type: ignore[no-untyped-def]
        return self._trailing_comma(updated_node)

    def leave_SimpleString(self, original_node, updated_node):  # type: ignore[no-untyped-def]
        value = updated_node.value
        if (
            len(value) < 2
            or value[0] not in "'\""
            or value[:3] in ('"""', "'''")
            or not self._chance(0.5)
        ):
            return updated_node
        body = value[1:-1]
        if "\\" in body or "'" in body or '"' in body:
            return updated_node
        quote = "'" if value[0] == '"' else '"'
        return updated_node.with_changes(value=f"{quote}{body}{quote}")


def reformat(source: str, seed: int) -> str:
    return cst.parse_module(source).visit(RandomReformatter(random.Random(seed))).code


@settings(max_examples=80, derandomize=True, deadline=None)
@given(source=st.sampled_from(SOURCES), seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_reformatting_keeps_code_hash(source: str, seed: int) -> None:
    reformatted = reformat(source, seed)
    ast.parse(reformatted)  # the reformatter itself must produce valid Python
    assert code_hash(reformatted) == code_hash(source)


def test_reformatter_actually_changes_text() -> None:
    changed = sum(reformat(SAMPLE, seed) != SAMPLE for seed in range(20))
    assert changed >= 18
