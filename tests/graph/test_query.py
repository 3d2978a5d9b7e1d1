from __future__ import annotations

import pytest

from btbuild.errors import QueryError
from btbuild.graph.graph import build_graph
from btbuild.graph.query import run_query

# a -> b -> d, a -> c -> d, e -> d ; f alone
DEPS = {
    "//x:a": ["//x:b", "//y:c"],
    "//x:b": ["//z:d"],
    "//y:c": ["//z:d"],
    "//z:d": [],
    "//y:e": ["//z:d"],
    "//y:f": [],
}
GRAPH = build_graph(DEPS)


def q(expression: str) -> list[str]:
    return list(run_query(GRAPH, expression).labels)


def test_deps_and_depth():
    assert q("deps(//x:a)") == ["//z:d", "//x:b", "//y:c", "//x:a"]
    assert q("deps(//x:a, 1)") == ["//x:b", "//y:c", "//x:a"]
    assert q("deps(//x:a, 0)") == ["//x:a"]


def test_rdeps_within_universe():
    assert q("rdeps(//..., //z:d)") == ["//z:d", "//x:b", "//y:c", "//y:e", "//x:a"]
    assert q("rdeps(//y:*, //z:d)") == ["//y:c", "//y:e"]
    assert q("rdeps(//..., //z:d, 1)") == ["//z:d", "//x:b", "//y:c", "//y:e"]


def test_paths():
    assert q("allpaths(//x:a, //z:d)") == ["//z:d", "//x:b", "//y:c", "//x:a"]
    assert q("allpaths(//y:e, //x:b)") == []
    result = run_query(GRAPH, "somepath(//x:a, //z:d)")
    assert result.path and list(result.labels) == ["//x:a", "//x:b", "//z:d"]


def test_set_operations_and_parentheses():
    assert q("deps(//x:a) - deps(//x:b)") == ["//y:c", "//x:a"]
    assert q("//y:* ^ deps(//x:a)") == ["//y:c"]
    assert q("//z:d + //y:f") == ["//y:f", "//z:d"]  # always (pass, label) order
    assert q("//... - (//y:* + //z:d)") == ["//x:b", "//x:a"]
    assert q("//y:* except //y:c") == ["//y:f", "//y:e"]


def test_passes_flag():
    result = run_query(GRAPH, "passes(//x:a)")
    assert result.show_passes
    assert [GRAPH.passes[x] for x in result.labels] == [1, 2, 2, 3]
    assert not run_query(GRAPH, "passes(//x:a) - //z:d").show_passes


@pytest.mark.parametrize(
    ("expression", "column", "text"),
    [
        ("deps(//x:a", 10, "expected ')'"),
        ("dep(//x:a)", 0, "unknown function 'dep' (did you mean 'deps'?)"),
        ("deps(//x:a) + ", 14, "expected a target pattern"),
        ("deps(//x:a, b)", 12, "expects a whole-number depth"),
        ("allpaths(//x:a)", 14, "takes 2 target expression(s)"),
        ("//x:nope", 0, "no target //x:nope"),
        ("deps(//q:*)", 5, "pattern //q:* matches no target"),
        ("deps(//../x:a)", 5, "'..' segment"),
        ("passes(//x:a, //x:b)", 12, "takes 1 argument(s)"),
    ],
)
def test_errors_point_at_the_column(expression, column, text):
    with pytest.raises(QueryError) as info:
        run_query(GRAPH, expression)
    assert text in str(info.value)
    assert info.value.column == column
    assert f"at column {column + 1}" in str(info.value)
