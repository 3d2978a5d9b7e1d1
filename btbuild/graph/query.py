"""``btbuild query``: a small Bazel-like query language over the dependency graph.

Grammar (operators are left-associative and share one precedence, as in Bazel)::

    expr    := term (("+" | "-" | "^" | "union" | "except" | "intersect") term)*
    term    := "(" expr ")" | call | PATTERN
    call    := "deps(" expr ["," INT] ")" | "rdeps(" expr "," expr ["," INT] ")"
             | "allpaths(" expr "," expr ")" | "somepath(" expr "," expr ")"
             | "passes(" expr ")"

``deps(X)`` is X and everything it depends on (``depth`` limits the hops); ``rdeps(U, X)`` is
every target in the universe U that depends on X (and X itself); ``allpaths(A, B)`` is every
target on a dependency path from A down to B; ``somepath(A, B)`` is one such path;
``passes(X)`` is ``deps(X)`` reported with each target's pass.
"""

from __future__ import annotations

import difflib
import re
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from btbuild.errors import LabelError, QueryError
from btbuild.graph.graph import Graph
from btbuild.workspace.labels import parse_pattern

_TOKEN = re.compile(
    r"\s*(?:(?P<op>[()+\-^,])|(?P<word>[A-Za-z_][A-Za-z0-9_]*(?![A-Za-z0-9_/:]))|(?P<int>\d+(?![A-Za-z0-9_/:.]))"
    r"|(?P<pattern>[^\s()+,^]+))"
)


@dataclass(frozen=True)
class Function:
    """A query function: how many target expressions it takes, whether a whole-number depth
    may follow them, and what it computes from their label sets (and the depth)."""

    arity: int
    takes_depth: bool
    evaluate: Callable[[Graph, list[list[str]], int | None], list[str]]


def _allpaths(graph: Graph, sets: list[list[str]], depth: int | None) -> list[str]:
    return graph.sorted(graph.closure(sets[0]) & graph.closure(sets[1], reverse=True))


def _rdeps(graph: Graph, sets: list[list[str]], depth: int | None) -> list[str]:
    return graph.sorted(graph.closure(sets[1], reverse=True, depth=depth) & set(sets[0]))


# Adding a function: one entry here (plus the grammar above and docs/query.md).
FUNCTIONS: dict[str, Function] = {
    "deps": Function(
        1, True, lambda graph, sets, depth: graph.sorted(graph.closure(sets[0], depth=depth))
    ),
    "rdeps": Function(2, True, _rdeps),
    "allpaths": Function(2, False, _allpaths),
    "somepath": Function(2, False, lambda graph, sets, depth: somepath(graph, sets[0], sets[1])),
    "passes": Function(1, False, lambda graph, sets, depth: graph.sorted(graph.closure(sets[0]))),
}
WORD_OPERATORS = {"union": "+", "except": "-", "intersect": "^"}


@dataclass(frozen=True)
class Token:
    kind: str  # op, word, int, pattern, end
    text: str
    column: int


@dataclass(frozen=True)
class QueryResult:
    labels: tuple[str, ...]  # topological (pass, label) order
    show_passes: bool = False  # the expression was passes(...)
    path: bool = False  # the expression was somepath(...): labels are a chain, dependent first


def tokenize(expression: str) -> list[Token]:
    tokens = []
    position = 0
    while position < len(expression):
        if expression[position:].strip() == "":
            break
        match = _TOKEN.match(expression, position)
        if not match or match.end() == position:
            column = position + len(expression[position:]) - len(expression[position:].lstrip())
            raise QueryError("unexpected character", expression, column)
        kind = match.lastgroup or "pattern"
        text = match.group(kind)
        column = match.start(kind)
        # a "-" right after a pattern character is part of a package name (//my-pkg:x)
        tokens.append(Token(kind, text, column))
        position = match.end()
    tokens.append(Token("end", "", len(expression)))
    return tokens


class _Parser:
    def __init__(self, expression: str, graph: Graph, current_package: str | None = None):
        self.expression = expression
        self.graph = graph
        self.current_package = current_package
        self.tokens = tokenize(expression)
        self.position = 0

    def peek(self) -> Token:
        return self.tokens[self.position]

    def take(self) -> Token:
        token = self.tokens[self.position]
        self.position += 1
        return token

    def expect(self, text: str) -> Token:
        token = self.take()
        if token.text != text:
            found = repr(token.text) if token.kind != "end" else "the end of the expression"
            raise QueryError(f"expected {text!r} but found {found}", self.expression, token.column)
        return token

    def parse(self) -> QueryResult:
        token = self.peek()
        result = self.expr()
        end = self.peek()
        if end.kind != "end":
            raise QueryError(f"unexpected {end.text!r}", self.expression, end.column)
        labels = set(result)
        if token.text == "somepath" and self.tokens[-2].text == ")" and self._single_call():
            return QueryResult(tuple(result), path=True)
        show_passes = token.text == "passes" and self._single_call()
        return QueryResult(tuple(self.graph.sorted(labels)), show_passes=show_passes)

    def _single_call(self) -> bool:
        depth = 0
        for token in self.tokens[1:-1]:
            if token.text == "(":
                depth += 1
            elif token.text == ")":
                depth -= 1
                if depth == 0 and token is not self.tokens[-2]:
                    return False
        return True

    def expr(self) -> list[str]:
        left = self.term()
        while True:
            token = self.peek()
            operator = (
                token.text
                if token.kind == "op"
                else WORD_OPERATORS.get(token.text)
                if token.kind == "word"
                else None
            )
            if operator not in ("+", "-", "^"):
                return left
            self.take()
            right = set(self.term())
            if operator == "+":
                left = list(dict.fromkeys([*left, *sorted(right - set(left))]))
            elif operator == "-":
                left = [label for label in left if label not in right]
            else:
                left = [label for label in left if label in right]

    def term(self) -> list[str]:
        token = self.take()
        if token.text == "(":
            inner = self.expr()
            self.expect(")")
            return inner
        if token.kind == "word" and self.peek().text == "(":
            return self.call(token)
        if token.kind in ("pattern", "word", "int"):
            return self.pattern(token)
        found = repr(token.text) if token.kind != "end" else "the end of the expression"
        raise QueryError(
            f"expected a target pattern or a function but found {found}",
            self.expression,
            token.column,
        )

    def call(self, name: Token) -> list[str]:
        if name.text not in FUNCTIONS:
            close = difflib.get_close_matches(name.text, FUNCTIONS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f"; known: {', '.join(FUNCTIONS)}"
            raise QueryError(f"unknown function {name.text!r}{hint}", self.expression, name.column)
        function = FUNCTIONS[name.text]
        arity, takes_depth = function.arity, function.takes_depth
        self.expect("(")
        sets: list[list[str]] = [self.expr()]
        depth: int | None = None
        while self.peek().text == ",":
            comma = self.take()
            token = self.peek()
            if len(sets) == arity:
                if not takes_depth:
                    raise QueryError(
                        f"{name.text}() takes {arity} argument(s)", self.expression, comma.column
                    )
                if token.kind != "int":
                    raise QueryError(
                        f"{name.text}() expects a whole-number depth here",
                        self.expression,
                        token.column,
                    )
                depth = int(self.take().text)
                break
            sets.append(self.expr())
        closing = self.peek()
        if len(sets) < arity:
            raise QueryError(
                f"{name.text}() takes {arity} target expression(s), got {len(sets)}",
                self.expression,
                closing.column,
            )
        self.expect(")")
        return function.evaluate(self.graph, sets, depth)

    def pattern(self, token: Token) -> list[str]:
        try:
            return sorted(resolve_patterns(self.graph, [token.text], self.current_package))
        except LabelError as exc:
            raise QueryError(str(exc), self.expression, token.column) from None


def somepath(graph: Graph, sources: Iterable[str], targets: Iterable[str]) -> list[str]:
    """A shortest dependency chain from some source down to some target; empty if none."""
    goal = set(targets)
    parent: dict[str, str | None] = {}
    queue: deque[str] = deque()
    for label in sorted(sources):
        parent[label] = None
        queue.append(label)
    while queue:
        label = queue.popleft()
        if label in goal:
            chain = [label]
            step = parent[label]
            while step is not None:
                chain.append(step)
                step = parent[step]
            return list(reversed(chain))
        for dep in graph.deps[label]:
            if dep not in parent:
                parent[dep] = label
                queue.append(dep)
    return []


def resolve_patterns(
    graph: Graph, texts: Iterable[str], current_package: str | None = None
) -> set[str]:
    """The labels matched by target patterns; a pattern matching nothing is an error.
    ``current_package`` resolves relative patterns (``:all``, ``:name``, ``...``)."""
    matched: set[str] = set()
    for text in texts:
        pattern = parse_pattern(text, current_package)
        hits = graph.match([pattern])
        if not hits:
            if pattern.kind == "target":
                close = difflib.get_close_matches(text, graph.order, n=1)
                same_name = [label for label in graph.order if label.endswith(f":{pattern.name}")]
                hint = f" (did you mean {(same_name or close)[0]}?)" if same_name or close else ""
                shown = text if text == str(pattern) else f"{text} ({pattern})"
                raise LabelError(f"no target {shown}{hint}")
            shown = text if text == str(pattern) else f"{text} ({pattern})"
            raise LabelError(f"pattern {shown} matches no target")
        matched |= hits
    return matched


def run_query(graph: Graph, expression: str, current_package: str | None = None) -> QueryResult:
    if not expression.strip():
        raise QueryError("empty query expression")
    return _Parser(expression, graph, current_package).parse()
