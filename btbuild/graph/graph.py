"""The dependency graph: passes by Kahn's algorithm, cycles by Tarjan's SCC, slicing.

Nodes are labels (``//pkg:name``). An edge ``a -> b`` means "a depends on b". A target's
*pass* is the length of the longest dependency chain below it, plus one: targets with no deps
are pass 1, and every target runs in a later pass than all of its deps. Passes are minimal:
each target sits in the earliest pass its deps allow.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from btbuild.errors import CycleError, LabelError
from btbuild.workspace.labels import Pattern, parse_label
from btbuild.workspace.model import Target, Workspace


@dataclass(frozen=True)
class Graph:
    deps: Mapping[str, tuple[str, ...]]  # label -> labels it depends on
    rdeps: Mapping[str, tuple[str, ...]]  # label -> labels that depend on it
    passes: Mapping[str, int]  # label -> pass number (1-based)
    order: tuple[str, ...]  # labels by (pass, label): a topological order
    targets: Mapping[str, Target] = field(default_factory=dict, compare=False)

    @property
    def labels(self) -> tuple[str, ...]:
        return self.order

    def closure(
        self, labels: Iterable[str], *, reverse: bool = False, depth: int | None = None
    ) -> set[str]:
        """``labels`` plus everything they (transitively) depend on, or that depends on them."""
        edges = self.rdeps if reverse else self.deps
        seen = set(labels)
        frontier = list(seen)
        level = 0
        while frontier and (depth is None or level < depth):
            level += 1
            next_frontier = []
            for label in frontier:
                for other in edges[label]:
                    if other not in seen:
                        seen.add(other)
                        next_frontier.append(other)
            frontier = next_frontier
        return seen

    def sorted(self, labels: Iterable[str]) -> list[str]:
        """``labels`` in topological (pass, label) order."""
        return sorted(labels, key=lambda label: (self.passes[label], label))

    def match(self, patterns: Sequence[Pattern]) -> set[str]:
        matched: set[str] = set()
        for pattern in patterns:
            hits = {label for label in self.order if pattern.matches(parse_label(label))}
            matched |= hits
        return matched

    def passes_of(self, labels: Iterable[str]) -> dict[int, list[str]]:
        grouped: dict[int, list[str]] = {}
        for label in self.sorted(labels):
            grouped.setdefault(self.passes[label], []).append(label)
        return grouped

    def sliced(self, product_lines: Iterable[str]) -> Graph:
        """Targets of any of ``product_lines`` (or with none declared), plus their deps."""
        wanted = set(product_lines)
        keep = {
            label
            for label, target in self.targets.items()
            if not target.product_lines or wanted & set(target.product_lines)
        }
        keep = self.closure(keep)
        return build_graph(
            {label: self.deps[label] for label in self.order if label in keep}, self.targets
        )


def graph_of(workspace: Workspace) -> Graph:
    """The dependency graph of a loaded workspace (raises CycleError naming every cycle)."""
    by_label = workspace.by_label()
    return build_graph(
        {label: target.deps for label, target in by_label.items()}, by_label, root=workspace.root
    )


def build_graph(
    deps: Mapping[str, Sequence[str]],
    targets: Mapping[str, Target] | None = None,
    *,
    root: Path | None = None,
) -> Graph:
    """Kahn's algorithm into passes; on leftovers, Tarjan SCC to report every cycle."""
    targets = targets or {}
    nodes = sorted(deps)
    rdeps: dict[str, list[str]] = {label: [] for label in nodes}
    for label in nodes:
        for dep in deps[label]:
            if dep not in rdeps:
                target = targets.get(label)
                raise LabelError(
                    f"target {label} depends on {dep}, which is not a target of this workspace",
                    path=target.build_file if target else None,
                    line=target.line if target else None,
                )
            rdeps[dep].append(label)
    waiting = {label: len(set(deps[label])) for label in nodes}
    level = dict.fromkeys(nodes, 1)  # tentative: final once every dep is done
    passes: dict[str, int] = {}
    ready = deque(label for label in nodes if waiting[label] == 0)
    while ready:
        label = ready.popleft()
        passes[label] = level[label]
        for dependent in set(rdeps[label]):
            level[dependent] = max(level[dependent], passes[label] + 1)
            waiting[dependent] -= 1
            if waiting[dependent] == 0:
                ready.append(dependent)
    if len(passes) != len(nodes):
        remaining = [label for label in nodes if label not in passes]
        cycles = find_cycles(deps, remaining)
        raise CycleError(describe_cycles(cycles, targets, root), cycles)
    order = tuple(sorted(nodes, key=lambda label: (passes[label], label)))
    return Graph(
        deps={label: tuple(deps[label]) for label in nodes},
        rdeps={label: tuple(sorted(set(rdeps[label]))) for label in nodes},
        passes=passes,
        order=order,
        targets=dict(targets),
    )


def strongly_connected(deps: Mapping[str, Sequence[str]], nodes: Sequence[str]) -> list[list[str]]:
    """Tarjan's SCC over ``nodes`` (iterative, so deep graphs do not hit the recursion limit)."""
    within = set(nodes)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for start in sorted(nodes):
        if start in index:
            continue
        work: list[tuple[str, int]] = [(start, 0)]
        while work:
            node, position = work.pop()
            if position == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            successors = [d for d in deps[node] if d in within]
            if position < len(successors):
                work.append((node, position + 1))
                successor = successors[position]
                if successor not in index:
                    work.append((successor, 0))
                elif successor in on_stack:
                    low[node] = min(low[node], index[successor])
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return components


def find_cycles(deps: Mapping[str, Sequence[str]], nodes: Sequence[str]) -> list[list[str]]:
    """One exact cycle per cyclic SCC: the shortest one through the SCC's smallest label.

    Each cycle is returned closed, ``[a, b, a]``, so it reads as ``a -> b -> a``.
    """
    cycles = []
    for component in strongly_connected(deps, nodes):
        start = component[0]
        members = set(component)
        if len(component) == 1 and start not in deps[start]:
            continue
        parent: dict[str, str] = {}
        queue = deque([start])
        found = None
        while queue and found is None:
            node = queue.popleft()
            for successor in sorted(set(deps[node])):
                if successor not in members:
                    continue
                if successor == start:
                    found = node
                    break
                if successor not in parent:
                    parent[successor] = node
                    queue.append(successor)
        assert found is not None, "a cyclic SCC always has a cycle through each member"
        path = [found]
        while path[-1] != start:
            path.append(parent[path[-1]])
        path.reverse()
        cycles.append([*path, start])
    return sorted(cycles)


def describe_cycles(
    cycles: list[list[str]], targets: Mapping[str, Target], root: Path | None = None
) -> str:
    def shown(path: Path) -> str:
        if root is not None and path.is_relative_to(root):
            return path.relative_to(root).as_posix()
        return str(path)

    parts = []
    for cycle in cycles:
        files = sorted({shown(targets[label].build_file) for label in cycle if label in targets})
        where = f" (in {', '.join(files)})" if files else ""
        parts.append(" -> ".join(cycle) + where)
    noun = "cycle" if len(cycles) == 1 else f"{len(cycles)} cycles"
    return f"dependency {noun}: " + "; ".join(parts)
