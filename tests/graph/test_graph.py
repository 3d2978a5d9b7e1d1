from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from btbuild.errors import CycleError
from btbuild.graph.graph import build_graph, find_cycles


def label(i: int) -> str:
    return f"//p{i % 3}:t{i}"


@st.composite
def dags(draw, max_nodes: int = 25):
    """Random DAGs: node i may only depend on nodes < i, then labels are shuffled."""
    n = draw(st.integers(1, max_nodes))
    deps = {}
    for i in range(n):
        chosen = draw(st.sets(st.integers(0, i - 1), max_size=4)) if i else set()
        deps[label(i)] = sorted(label(j) for j in chosen)
    return deps


@given(dags())
def test_every_edge_goes_to_a_higher_pass_and_passes_are_minimal(deps):
    graph = build_graph(deps)
    for node, node_deps in deps.items():
        for dep in node_deps:
            assert graph.passes[dep] < graph.passes[node]
        # minimal: exactly one more than the deepest dependency (1 without deps)
        expected = 1 + max((graph.passes[d] for d in node_deps), default=0)
        assert graph.passes[node] == expected
    position = {node: i for i, node in enumerate(graph.order)}
    assert all(position[d] < position[n] for n, ds in deps.items() for d in ds)


@given(dags(max_nodes=15), st.data())
@settings(max_examples=200)
def test_planted_cycle_is_reported_as_a_real_cycle(deps, data):
    nodes = sorted(deps)
    length = data.draw(st.integers(1, min(5, len(nodes))))
    cycle_nodes = data.draw(st.permutations(nodes))[:length]
    planted = {n: list(ds) for n, ds in deps.items()}
    for a, b in zip(cycle_nodes, cycle_nodes[1:] + cycle_nodes[:1], strict=False):
        if b not in planted[a]:
            planted[a].append(b)
    with pytest.raises(CycleError) as info:
        build_graph(planted)
    cycles = info.value.cycles
    assert cycles
    for cycle in cycles:
        assert cycle[0] == cycle[-1]
        assert len(set(cycle[:-1])) == len(cycle) - 1  # elementary
        for a, b in zip(cycle, cycle[1:], strict=False):
            assert b in planted[a], f"{a} -> {b} is not an edge"
        assert " -> ".join(cycle) in str(info.value)
    assert any(set(c) & set(cycle_nodes) for c in cycles)


def test_self_loop_and_two_independent_cycles():
    deps = {"//a:x": ["//a:x"], "//b:y": ["//b:z"], "//b:z": ["//b:y"], "//c:ok": []}
    assert find_cycles(deps, sorted(deps)) == [["//a:x", "//a:x"], ["//b:y", "//b:z", "//b:y"]]
    with pytest.raises(CycleError, match="2 cycles: //a:x -> //a:x; //b:y -> //b:z -> //b:y"):
        build_graph(deps)


def test_deep_chain_does_not_recurse():
    n = 5000
    deps = {f"//p:t{i}": [f"//p:t{i - 1}"] if i else [] for i in range(n)}
    assert build_graph(deps).passes[f"//p:t{n - 1}"] == n
    deps["//p:t0"] = [f"//p:t{n - 1}"]
    with pytest.raises(CycleError) as info:
        build_graph(deps)
    assert len(info.value.cycles[0]) == n + 1


def test_product_line_slicing_keeps_deps():
    from pathlib import Path

    from btbuild.workspace.model import Target

    def target(name, deps=(), lines=()):
        return Target(
            name=name,
            package="p",
            entry_file=Path("x.py"),
            entry_attr="X",
            deps=deps,
            product_lines=lines,
        )

    targets = {
        "//p:base": target("base"),
        "//p:stock": target("stock", ("//p:base",), ("stocks",)),
        "//p:crypto": target("crypto", ("//p:base",), ("crypto",)),
    }
    graph = build_graph({k: v.deps for k, v in targets.items()}, targets)
    assert set(graph.sliced(["stocks"]).order) == {"//p:base", "//p:stock"}
