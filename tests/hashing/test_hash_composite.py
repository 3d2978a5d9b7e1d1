from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from hashing_helpers import CALC, json_under_hash_seeds, make_target, make_workspace_value

from btbuild.errors import CycleError, LabelError, WorkspaceError
from btbuild.hashing import compute_hashes, hash_report, render_text
from btbuild.workspace.model import Schedule


@pytest.fixture
def chain(tree):
    """a <- b <- c, plus an independent d."""
    root = tree({f"calculations/p/{name}.py": CALC for name in "abcd"})
    targets = [
        make_target(root, "a"),
        make_target(root, "b", deps=("//p:a",)),
        make_target(root, "c", deps=("//p:b",)),
        make_target(root, "d"),
    ]
    return root, make_workspace_value(root, targets)


def test_code_change_propagates_through_deps_but_not_static(chain, tree, no_distributions) -> None:
    root, workspace = chain
    before = compute_hashes(workspace, distributions=no_distributions)
    tree({"calculations/p/a.py": CALC.replace("1", "2")})
    after = compute_hashes(workspace, distributions=no_distributions)
    assert before["a"].code != after["a"].code
    assert before["a"].static != after["a"].static
    for name in ("b", "c"):
        assert before[name].static == after[name].static  # early cutoff stays possible
        assert before[name].deps != after[name].deps
        assert before[name].composite != after[name].composite
    assert before["d"] == after["d"]
    assert after["b"].upstream == (("a", after["a"].composite),)


def test_epoch_changes_every_target(chain, no_distributions) -> None:
    _, workspace = chain
    one = compute_hashes(workspace, distributions=no_distributions)
    two = compute_hashes(dataclasses.replace(workspace, epoch=2), distributions=no_distributions)
    assert all(one[n].static != two[n].static and two[n].epoch == 2 for n in one)
    assert all(one[n].code == two[n].code for n in one)


@pytest.mark.parametrize(
    ("field", "value", "changes"),
    [
        ("kind", "per_date", True),
        ("roots", ("prices",), True),
        ("optional_roots", ("insights",), True),
        ("historical", True, True),
        ("lookback", (("prices", 30),), True),
        ("entry_attr", "Other", True),
        ("schedule", Schedule(weekdays=(0,)), False),
        ("product_lines", ("stocks",), False),
        ("schema_json", '{"type":"number"}', True),
        ("schema_file", "schemas/d.json", False),  # where it came from: its content counts
        ("ttl_days", 30, False),
        ("alert", True, False),
    ],
)
def test_declaration_fields(
    chain, no_distributions, field: str, value: object, changes: bool
) -> None:
    _, workspace = chain
    before = compute_hashes(workspace, distributions=no_distributions)["d"]
    target = dataclasses.replace(workspace.targets["d"], **{field: value})
    changed = dataclasses.replace(workspace, targets={**workspace.targets, "d": target})
    after = compute_hashes(changed, distributions=no_distributions)["d"]
    assert (before.declaration != after.declaration) is changes
    assert (before.composite != after.composite) is changes


def test_root_order_is_not_behaviour(tree, no_distributions) -> None:
    root = tree({"calculations/p/a.py": CALC})
    one = make_workspace_value(root, [make_target(root, "a", roots=("prices", "portfolio"))])
    two = make_workspace_value(root, [make_target(root, "a", roots=("portfolio", "prices"))])
    assert compute_hashes(one, distributions=no_distributions) == compute_hashes(
        two, distributions=no_distributions
    )


def test_identical_code_in_two_targets_gives_distinct_labels_same_static(
    tree, no_distributions
) -> None:
    root = tree({"calculations/p/a.py": CALC, "calculations/q/b.py": CALC})
    workspace = make_workspace_value(
        root, [make_target(root, "a"), make_target(root, "b", package="q")]
    )
    hashes = compute_hashes(workspace, distributions=no_distributions)
    assert hashes["a"].static == hashes["b"].static
    assert hashes["b"].label == "//q:b"


def test_long_chain_does_not_recurse(tree, no_distributions) -> None:
    root = tree({"calculations/p/calc.py": CALC})
    count = 3000
    targets = [
        make_target(root, f"t{i}", entry="calc.py", deps=(f"//p:t{i - 1}",) if i else ())
        for i in range(count)
    ]
    hashes = compute_hashes(make_workspace_value(root, targets), distributions=no_distributions)
    assert len({h.composite for h in hashes.values()}) == count


def test_unknown_dep_and_cycle_are_errors(tree, no_distributions) -> None:
    root = tree({"calculations/p/a.py": CALC, "calculations/p/b.py": CALC})
    bad = make_workspace_value(root, [make_target(root, "a", deps=("//p:zz",))])
    with pytest.raises(LabelError, match="//p:zz"):
        compute_hashes(bad, distributions=no_distributions)
    cyclic = make_workspace_value(
        root, [make_target(root, "a", deps=("//p:b",)), make_target(root, "b", deps=("//p:a",))]
    )
    with pytest.raises(CycleError, match="dependency cycle: //p:a -> //p:b -> //p:a"):
        compute_hashes(cyclic, distributions=no_distributions)


def test_missing_or_broken_entry_file_names_the_file(tree, no_distributions) -> None:
    root = tree({"calculations/p/a.py": "def broken(:\n"})
    with pytest.raises(WorkspaceError, match=r"calculations/p/a\.py:1: "):
        compute_hashes(
            make_workspace_value(root, [make_target(root, "a")]), distributions=no_distributions
        )
    with pytest.raises(WorkspaceError, match=r"missing\.py"):
        compute_hashes(
            make_workspace_value(root, [make_target(root, "m", entry="missing.py")]),
            distributions=no_distributions,
        )


def test_report_json_and_text(chain, no_distributions) -> None:
    _, workspace = chain
    hashes = compute_hashes(workspace, distributions=no_distributions)
    report = hash_report(hashes, ["//p:c", "//p:a"])
    assert [entry["label"] for entry in report["targets"]] == ["//p:a", "//p:c"]
    entry = report["targets"][1]
    assert entry["composite"] == hashes["c"].composite
    assert entry["upstream"] == {"b": hashes["b"].composite}
    json.dumps(report)
    text = render_text(report)
    assert "//p:c" in text and hashes["c"].composite in text and "deps" in text
    with pytest.raises(LabelError, match="//p:nope"):
        hash_report(hashes, ["//p:nope"])


_CHILD = """
import json, sys
sys.path.insert(0, {tests!r})
from pathlib import Path
from hashing_helpers import make_target, make_workspace_value
from btbuild.hashing import DistributionIndex, compute_hashes
root = Path({root!r})
targets = [make_target(root, "a"), make_target(root, "b", deps=("//p:a",), roots=("z", "y", "x"))]
hashes = compute_hashes(make_workspace_value(root, targets), distributions=DistributionIndex({{}}, {{}}))
print(json.dumps({{n: h.composite for n, h in hashes.items()}}, sort_keys=True))
"""


def test_same_hashes_in_fresh_processes_with_any_hash_seed(tree, no_distributions) -> None:
    source = "S = {'x', 'y', 'z'}\nclass Calc:\n    def process(self, ctx):\n        seen = {k for k in ctx.user}\n        return sorted(seen | S)\n"
    root = tree({"calculations/p/a.py": source, "calculations/p/b.py": CALC})
    targets = [
        make_target(root, "a"),
        make_target(root, "b", deps=("//p:a",), roots=("z", "y", "x")),
    ]
    local = {
        n: h.composite
        for n, h in compute_hashes(
            make_workspace_value(root, targets), distributions=no_distributions
        ).items()
    }
    code = _CHILD.format(tests=str(Path(__file__).parent), root=str(root))
    outputs = json_under_hash_seeds(code, ("0", "12345", "random"))
    assert outputs[0] == outputs[1] == outputs[2] == local
