"""Definition-level layers (issue 14): a target's layer hash covers only the top-level
definitions it reaches through imports, and falls back to whole modules where a slice cannot
be trusted statically, saying so."""

from __future__ import annotations

from hashing_helpers import make_target, make_workspace_value

from btbuild.hashing import compute_hashes, hash_report, render_text

SHARED = """\
from helpers import clip


def _weight(x):
    return x * 2


def f0(x):
    return clip(_weight(x))


def f1(x):
    return _weight(x) + 1


def f2(x):
    return -x
"""

HELPERS = "def clip(x):\n    return min(x, 10)\n\n\ndef unused(x):\n    return x\n"


def thin(name: str, source: str = "from formulas import {name}") -> str:
    head = source.format(name=name)
    return f"{head}\n\n\nclass Calc:\n    def process(self, ctx):\n        return {name}(1)\n"


def build(tree, no_distributions, files: dict[str, str], names=("f0", "f1", "f2")):  # type: ignore[no-untyped-def]
    calcs = {f"calculations/p/{n}.py": files.pop(n, thin(n)) for n in names}
    root = tree({**files, **calcs})
    workspace = make_workspace_value(root, [make_target(root, n) for n in names])

    def hashes():  # type: ignore[no-untyped-def]
        return compute_hashes(workspace, distributions=no_distributions)

    return tree, hashes


def changed(before, after) -> set[str]:  # type: ignore[no-untyped-def]
    return {name for name in before if before[name].layers != after[name].layers}


def edit(tree, hashes, files: dict[str, str]) -> set[str]:  # type: ignore[no-untyped-def]
    before = hashes()
    tree(files)
    return changed(before, hashes())


def test_editing_one_function_of_a_shared_module_moves_only_its_users(tree, no_distributions):
    tree, hashes = build(tree, no_distributions, {"formulas.py": SHARED, "helpers.py": HELPERS})
    assert edit(tree, hashes, {"formulas.py": SHARED.replace("return -x", "return -2 * x")}) == {
        "f2"
    }
    # a helper two of them share, and a helper of another module reached through one of them
    shared = SHARED.replace("return -x", "return -2 * x").replace("x * 2", "x * 3")
    assert edit(tree, hashes, {"formulas.py": shared}) == {"f0", "f1"}
    assert edit(tree, hashes, {"helpers.py": HELPERS.replace("min(x, 10)", "min(x, 9)")}) == {"f0"}
    assert (
        edit(
            tree,
            hashes,
            {
                "helpers.py": HELPERS.replace("min(x, 10)", "min(x, 9)").replace(
                    "return x\n", "return -x\n"
                )
            },
        )
        == set()
    )
    # f2 still lists helpers.py (importing formulas runs its import), with only its
    # import-time statements (none here) in f2's hash
    assert hashes()["f2"].layer_files == ("formulas.py", "helpers.py")
    assert hashes()["f0"].layer_files == ("formulas.py", "helpers.py")
    assert hashes()["f0"].layer_whole == ()


def test_import_time_statements_count_for_every_user(tree, no_distributions):
    shared = "CONFIG = {}\nCONFIG['k'] = 1\n" + SHARED
    tree, hashes = build(tree, no_distributions, {"formulas.py": shared, "helpers.py": HELPERS})
    edited = shared.replace("CONFIG['k'] = 1", "CONFIG['k'] = 2")
    assert edit(tree, hashes, {"formulas.py": edited}) == {"f0", "f1", "f2"}


def test_a_module_imported_for_its_side_effects_counts(tree, no_distributions):
    calc = "import setup_mod\n" + thin("f2")
    setup = "import formulas\nformulas.SCALE = 3\n\n\ndef later():\n    return 1\n"
    files = {"formulas.py": SHARED, "helpers.py": HELPERS, "setup_mod.py": setup, "f2": calc}
    tree, hashes = build(tree, no_distributions, files)
    assert edit(tree, hashes, {"setup_mod.py": setup.replace("= 3", "= 4")}) == {"f2"}


def test_module_objects_star_imports_and_dynamic_modules_are_whole(tree, no_distributions):
    files = {
        "formulas.py": SHARED,
        "helpers.py": HELPERS,
        "dyn.py": "def f1(x):\n    return globals()['g'](x)\n\n\ndef g(x):\n    return x\n\n\ndef h():\n    return 0\n",
        "f0": thin("f0", "import formulas\nf0 = formulas.f0"),
        "f1": thin("f1", "from dyn import f1"),
        "f2": thin("f2", "from helpers import *\nfrom formulas import f2"),
    }
    tree, hashes = build(tree, no_distributions, files)
    current = hashes()
    assert dict(current["f0"].layer_whole) == {"formulas.py": "imported as a module object"}
    assert dict(current["f1"].layer_whole) == {"dyn.py": "reaches its globals dynamically"}
    assert dict(current["f2"].layer_whole) == {"helpers.py": "star import"}
    # whole means whole: an unrelated function of those modules moves them
    assert edit(tree, hashes, {"formulas.py": SHARED.replace("return -x", "return x")}) == {
        "f0",
        "f2",
    }
    assert edit(tree, hashes, {"helpers.py": HELPERS.replace("return x\n", "return 0\n")}) == {"f2"}
    assert edit(tree, hashes, {"dyn.py": files["dyn.py"].replace("return 0", "return 1")}) == {"f1"}
    report = render_text(hash_report(hashes(), ["//p:f2"]))
    assert "helpers.py [whole: star import]" in report


def test_the_entry_module_imported_again_keeps_whole_layers(tree, no_distributions):
    files = {
        "formulas.py": SHARED + "\n\nimport f0\n",
        "helpers.py": HELPERS,
    }
    tree, hashes = build(tree, no_distributions, files, names=("f0",))
    whole = dict(hashes()["f0"].layer_whole)
    assert whole["formulas.py"] == "the entry module is imported again"


def test_relative_imports_of_package_names_and_submodules(tree, no_distributions):
    init = "def scale(x):\n    return x * 2\n\n\ndef other(x):\n    return x\n"
    calc = "from . import scale\n\n\nclass Calc:\n    def process(self, ctx):\n        return scale(1)\n"
    files = {"calculations/p/__init__.py": init, "user": calc}
    tree, hashes = build(tree, no_distributions, files, names=("user",))
    assert edit(tree, hashes, {"calculations/p/__init__.py": init.replace("* 2", "* 3")}) == {
        "user"
    }
    edited = init.replace("* 2", "* 3").replace("return x\n", "return -x\n")
    assert edit(tree, hashes, {"calculations/p/__init__.py": edited}) == set()


REGISTRY = "RULES = {}\n\n\ndef register(fn):\n    RULES[fn.__name__] = fn\n    return fn\n"
BASE = (
    "RULES = []\n\n\nclass Rule:\n    def __init_subclass__(cls, **kw):\n"
    "        super().__init_subclass__(**kw)\n        RULES.append(cls)\n"
)
RULES = """\
from dataclasses import dataclass
from functools import lru_cache

from registry import register
from base import Rule


@register
def cash_rule(book):
    return book * 1.0


class Cash(Rule):
    def score(self, book):
        return book * 1.0


@dataclass
class Unused:
    size: int = 1


@lru_cache
def unused():
    return 1
"""


def test_import_time_code_filling_another_modules_registry_counts(tree, no_distributions):
    """Red team: ``@register`` (or a base's ``__init_subclass__``) in a module imported for its
    side effects fills a registry of another module, which the entry reads. The effect is in
    no slice of its own module's names, but it is in every slice of that module: editing a
    registered function's body used to leave every hash unchanged (stale results, exit 0)."""
    calcs = {
        "f0": "import rules\nfrom registry import RULES\n\n\nclass Calc:\n"
        "    def process(self, ctx):\n        return {k: f(1) for k, f in RULES.items()}\n",
        "f1": "from rules import Unused\nfrom base import RULES\n\n\nclass Calc:\n"
        "    def process(self, ctx):\n        return [c().score(1) for c in RULES]\n",
        "f2": thin("f2", "from helpers import clip as {name}"),
    }
    files = {"registry.py": REGISTRY, "base.py": BASE, "rules.py": RULES, "helpers.py": HELPERS}
    tree, hashes = build(tree, no_distributions, {**files, **calcs})
    body = RULES.replace("return book * 1.0\n\n\nclass", "return book * 2.0\n\n\nclass")
    assert edit(tree, hashes, {"rules.py": body}) == {"f0", "f1"}
    method = body.replace(
        "    def score(self, book):\n        return book * 1.0",
        "    def score(self, book):\n        return book * 3.0",
    )
    assert edit(tree, hashes, {"rules.py": method}) == {"f0", "f1"}
    # decorators and bases of the standard library keep no state: still sliced away
    stateless = method.replace("size: int = 1", "size: int = 2").replace("return 1\n", "return 2\n")
    assert edit(tree, hashes, {"rules.py": stateless}) == set()
