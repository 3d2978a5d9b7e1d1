"""``btbuild query EXPR``: evaluate a query expression over the dependency graph."""

from __future__ import annotations

import json

import click

from btbuild.cli.options import Options
from btbuild.graph.graph import Graph
from btbuild.graph.query import QueryResult, run_query


@click.command("query")
@click.argument("expression")
@click.option(
    "--output",
    "output",
    type=click.Choice(["label", "json", "dot", "schema"]),
    default="label",
    show_default=True,
)
@click.option(
    "--product-line",
    "product_lines",
    multiple=True,
    metavar="NAME",
    help="Only targets of this product line (and their deps).",
)
@click.pass_obj
def command(options: Options, expression: str, output: str, product_lines: tuple[str, ...]) -> int:
    """Evaluate EXPR: deps(X[, depth]), rdeps(U, X[, depth]), allpaths(A, B), somepath(A, B),
    passes(X), patterns, and the set operators + - ^ (union, except, intersect)."""
    session = options.session(product_lines=product_lines)
    result = run_query(session.graph, expression, session.current_package)
    click.echo(render(session.graph, result, output), nl=False)
    return 0


def render(graph: Graph, result: QueryResult, output: str) -> str:
    if output == "schema":  # each target's output schema (null: none declared)
        schemas = {
            label: json.loads(graph.targets[label].schema_json or "null") for label in result.labels
        }
        return json.dumps(schemas, indent=2) + "\n"
    if output == "json":
        rows = [
            {
                "label": label,
                "pass": graph.passes[label],
                "kind": graph.targets[label].kind if label in graph.targets else None,
                "deps": list(graph.deps[label]),
            }
            for label in result.labels
        ]
        return (
            json.dumps(
                {"expression_kind": "path" if result.path else "set", "targets": rows}, indent=2
            )
            + "\n"
        )
    if output == "dot":
        members = set(result.labels)
        lines = ["digraph btbuild {"]
        for label in result.labels:
            lines.append(f'  "{label}";')
        for label in result.labels:
            for dep in graph.deps[label]:
                if dep in members:
                    lines.append(f'  "{label}" -> "{dep}";')
        lines.append("}")
        return "\n".join(lines) + "\n"
    if result.show_passes:
        return "".join(f"{graph.passes[label]} {label}\n" for label in result.labels)
    return "".join(f"{label}\n" for label in result.labels)
