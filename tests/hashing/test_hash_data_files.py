"""Data files a calculation names are inputs: their contents move its infra hash."""

from __future__ import annotations

from hashing_helpers import make_target, make_workspace_value

from btbuild.hashing import compute_hashes, hash_report, render_text

READER = """\
import json
import pathlib

RATES = json.loads((pathlib.Path(__file__).parent / "rates.json").read_text())


class Calc:
    def process(self, ctx):
        return RATES["k"] * lookup()
"""
LAYER = 'def lookup():\n    return open("shared/bands.csv").read().count(",")\n'
PLAIN = 'class Calc:\n    def process(self, ctx):\n    return {"a.b": "x.y", "u": "https://x.org/a.json"}\n'


def test_a_data_file_named_by_the_code_or_a_layer_is_an_input(tree, no_distributions):
    """Red team: editing ``rates.json`` next to the code (or a CSV a layer opens) moved no
    hash: every cell was up to date, with results computed from the old table."""
    root = tree(
        {
            "calculations/p/reader.py": "from helpers import lookup\n" + READER,
            "calculations/p/rates.json": '{"k": 1.0}',
            "calculations/p/helpers.py": LAYER,
            "shared/bands.csv": "a,b\n",
            "calculations/p/plain.py": PLAIN.replace("    return", "        return"),
            "calculations/p/a.b": "x",
        }
    )
    names = ("reader", "plain")
    workspace = make_workspace_value(root, [make_target(root, n) for n in names])

    def hashes():  # type: ignore[no-untyped-def]
        return compute_hashes(workspace, distributions=no_distributions)

    before = hashes()
    assert before["reader"].data_files == ("calculations/p/rates.json", "shared/bands.csv")
    assert "calculations/p/rates.json, shared/bands.csv" in render_text(
        hash_report(before, ["//p:reader"])
    )
    tree({"calculations/p/rates.json": '{"k": 2.0}'})
    after = hashes()
    assert after["reader"].infra != before["reader"].infra
    assert (after["reader"].code, after["reader"].layers) == (
        before["reader"].code,
        before["reader"].layers,
    )
    tree({"shared/bands.csv": "a,b,c\n"})
    assert hashes()["reader"].infra != after["reader"].infra
    # a literal naming a file is an input even when it is not read: a needless re-run, never
    # a stale result; a literal naming no file (or a .py, or a URL) is nothing
    assert before["plain"].data_files == ("calculations/p/a.b",)
    tree({"calculations/p/x.y": "now a file"})
    assert hashes()["plain"].data_files == ("calculations/p/a.b", "calculations/p/x.y")
