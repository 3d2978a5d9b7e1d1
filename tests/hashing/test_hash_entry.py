"""Per-entry code hashes: an entry's hash covers only the module statements it needs."""

from __future__ import annotations

import json
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
from hashing_helpers import json_under_hash_seeds, make_target, make_workspace_value

import btbuild.hashing.layers as layers_module
from btbuild.hashing import FileFacts, HashCache, analyze_source, compute_hashes

TOTALS = """\
import math

SCALE = 2

def _clean(values):
    return [v for v in values if v is not None]

def total(values):
    kept = _clean(values)
    return math.fsum(kept) * SCALE

def sign(value):
    return 1 if value > 0 else -1 if value < 0 else 0
"""


def entry_hashes(source: str, *entries: str) -> dict[str, str]:
    facts = analyze_source(textwrap.dedent(source))
    return {entry: facts.entry_code_hash(entry) for entry in entries}


def changed(before: str, after: str, *entries: str) -> set[str]:
    """The entries whose code hash moves when ``before`` becomes ``after``."""
    old, new = entry_hashes(before, *entries), entry_hashes(after, *entries)
    return {entry for entry in entries if old[entry] != new[entry]}


def test_changing_one_entry_leaves_the_other_alone() -> None:
    after = TOTALS.replace("else 0", "else None")
    assert changed(TOTALS, after, "total", "sign") == {"sign"}
    after = TOTALS.replace("math.fsum(kept)", "sum(kept)")
    assert changed(TOTALS, after, "total", "sign") == {"total"}


def test_new_locals_in_one_function_do_not_renumber_another() -> None:
    before = "def sign(v):\n    return v\n\n" + TOTALS.replace("def sign", "def sign_old")
    after = "def sign(v):\n    w = v\n    z = w\n    return z\n\n" + TOTALS.replace(
        "def sign", "def sign_old"
    )
    assert changed(before, after, "total", "sign") == {"sign"}


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("SCALE = 2", "SCALE = 3"),  # a constant the entry reads
        ("if v is not None", "if v"),  # a helper the entry calls
        ("import math", "import cmath as math"),  # an import the entry uses
    ],
)
def test_shared_dependencies_change_the_entry(old: str, new: str) -> None:
    assert changed(TOTALS, TOTALS.replace(old, new), "total", "sign") == {"total"}


@pytest.mark.parametrize(
    ("statement", "variant"),
    [
        ("print('loaded')", "print('ready')"),
        ("if SCALE > 1:\n    SCALE = 1", "if SCALE > 1:\n    SCALE = 0"),
        ("math.pi = 3", "math.pi = 4"),
        ("for _ in range(2):\n    pass", "for _ in range(3):\n    pass"),
        ("from os.path import *", "from os import *"),
        (
            "try:\n    import numpy\nexcept ImportError:\n    numpy = None",
            "try:\n    import numpy\nexcept ImportError:\n    numpy = 0",
        ),
    ],
)
def test_module_level_statements_are_in_every_entry(statement: str, variant: str) -> None:
    both = {"total", "sign"}
    assert changed(TOTALS, TOTALS + statement + "\n", "total", "sign") == both
    assert changed(TOTALS + statement + "\n", TOTALS + variant + "\n", "total", "sign") == both


def test_helper_shared_by_both_entries_changes_both() -> None:
    source = TOTALS.replace("return 1 if value", "return _clean([1])[0] if value")
    assert changed(source, source.replace("is not None", "!= 0"), "total", "sign") == {
        "total",
        "sign",
    }


def test_unused_definitions_and_imports_do_not_matter() -> None:
    after = TOTALS + "import json\n\nLIMIT = 5\n\ndef unused():\n    return json.dumps(LIMIT)\n"
    assert changed(TOTALS, after, "total", "sign") == set()


def test_local_shadowing_a_global_does_not_depend_on_it() -> None:
    before = "HELPER = 1\ndef total(xs):\n    HELPER = len(xs)\n    return HELPER\n"
    assert changed(before, before.replace("HELPER = 1", "HELPER = 9"), "total") == set()


def test_class_entry_covers_body_bases_decorators_and_defaults() -> None:
    source = """\
        import functools
        LIMIT = 3
        OFFSET = 1
        def deco(cls):
            return cls
        class Base:
            factor = 2
        def helper(x, bump=OFFSET):
            return x + bump
        @deco
        class Calc(Base):
            cap = LIMIT
            def process(self, ctx):
                return helper(self.cap * self.factor)
        def other():
            return 0
        """
    for old, new in [
        ("LIMIT = 3", "LIMIT = 4"),
        ("OFFSET = 1", "OFFSET = 2"),
        ("return cls", "return None"),
        ("factor = 2", "factor = 5"),
        ("x + bump", "x - bump"),
    ]:
        assert changed(source, source.replace(old, new), "Calc", "other") == {"Calc"}, old
    assert changed(source, source.replace("return 0", "return 1"), "Calc", "other") == {"other"}


def test_function_writing_a_global_is_a_binder_of_it() -> None:
    source = """\
        STATE = 0
        def bump():
            global STATE
            STATE = 1
        def read():
            return STATE
        def unrelated():
            return 2
        """
    assert changed(source, source.replace("STATE = 1", "STATE = 2"), "read", "unrelated") == {
        "read"
    }


def test_import_time_registration_is_included_where_the_registry_is_used() -> None:
    source = """\
        REGISTRY = []
        def register(fn):
            REGISTRY.append(fn)
            return fn
        @register
        def plugin_a():
            return 1
        def uses_registry():
            return [fn() for fn in REGISTRY]
        def plain():
            return 3
        """
    after = source.replace("return 1", "return 2")
    assert changed(source, after, "uses_registry", "plain") == {"uses_registry"}
    subclassing = """\
        class Base:
            seen = []
            def __init_subclass__(cls):
                Base.seen.append(cls.__name__)
        class Child(Base):
            pass
        def count():
            return len(Base.seen)
        def plain():
            return 3
        """
    after = subclassing.replace("class Child", "class Kid")
    assert changed(subclassing, after, "count", "plain") == {"count"}


@pytest.mark.parametrize(
    "trick",
    [
        "globals()['sign']",
        "eval('sign')",
        "getattr(sys.modules[__name__], 'sign')",
        "vars()",
        "importlib.import_module(__name__)",
    ],
)
def test_dynamic_lookup_falls_back_to_the_whole_module(trick: str) -> None:
    source = f"import sys, importlib\n{TOTALS}\ndef lookup():\n    return {trick}\n"
    facts = analyze_source(source)
    assert facts.dynamic
    assert facts.entry_code_hash("total") == facts.code_hash
    after = source.replace("else 0", "else None")
    assert changed(source, after, "total", "sign") == {"total", "sign"}


def test_entry_not_bound_by_a_definition_uses_the_whole_module() -> None:
    facts = analyze_source(TOTALS)
    assert facts.entry_code_hash("missing") == facts.code_hash
    conditional = "import sys\nif sys.version_info >= (3,):\n    def total(x):\n        return x\n"
    facts = analyze_source(conditional)
    assert facts.entry_code_hash("total") == facts.code_hash  # the `if` is everything


def test_entry_hash_differs_from_whole_module_when_something_is_left_out() -> None:
    facts = analyze_source(TOTALS)
    assert facts.entry_code_hash("sign") != facts.code_hash
    assert facts.entry_code_hash("total") != facts.entry_code_hash("sign")


def test_cosmetic_changes_keep_entry_hashes() -> None:
    cosmetic = TOTALS.replace("kept", "remaining").replace("SCALE = 2", "SCALE = 2  # note")
    cosmetic = '"""Totals."""\n' + cosmetic.replace("\ndef sign", "\n\n\ndef sign")
    assert changed(TOTALS, cosmetic, "total", "sign") == set()


def test_facts_round_trip_through_json() -> None:
    facts = analyze_source(TOTALS + "print(1)\n@register\ndef f():\n    pass\n")
    again = FileFacts.from_json(json.loads(json.dumps(facts.to_json())))
    assert again == facts
    assert again is not None and again.entry_code_hash("sign") == facts.entry_code_hash("sign")


@pytest.mark.parametrize(
    "statements",
    [[["x" * 32, [], [], 0, []]], [["0" * 32, [1], [], 0, []]], [["0" * 32, [], [], 9, []]], "x"],
)
def test_malformed_statement_facts_are_a_miss(statements: object) -> None:
    document = analyze_source(TOTALS).to_json()
    document["statements"] = statements
    assert FileFacts.from_json(document) is None


def _two_entry_workspace(root: Path):  # type: ignore[no-untyped-def]
    base = make_target(root, "total", entry="totals.py")
    targets = [
        replace(base, entry_attr="total"),
        replace(make_target(root, "sign", entry="totals.py"), entry_attr="sign"),
    ]
    return make_workspace_value(root, targets)


def test_compute_hashes_per_entry_and_warm_cache(tree, no_distributions, monkeypatch) -> None:
    root = tree({"calculations/p/totals.py": TOTALS})
    workspace = _two_entry_workspace(root)
    first = compute_hashes(
        workspace, distributions=no_distributions, cache=HashCache.for_workspace(root)
    )
    assert first["total"].code != first["sign"].code
    tree({"calculations/p/totals.py": TOTALS.replace("else 0", "else None")})
    cache = HashCache.for_workspace(root)
    second = compute_hashes(workspace, distributions=no_distributions, cache=cache)
    assert cache.misses == 1  # one file parsed once for both entries
    assert second["total"].code == first["total"].code
    assert second["total"].composite == first["total"].composite
    assert second["sign"].code != first["sign"].code

    def fail(*args: object, **kwargs: object) -> FileFacts:
        raise AssertionError("a warm run must not parse")

    monkeypatch.setattr(layers_module, "analyze_source", fail)
    warm = HashCache.for_workspace(root)
    assert compute_hashes(workspace, distributions=no_distributions, cache=warm) == second
    assert warm.misses == 0


def test_module_importing_itself_uses_the_whole_module(tree, no_distributions) -> None:
    source = "import totals\n" + TOTALS
    root = tree({"calculations/p/totals.py": source})
    workspace = _two_entry_workspace(root)
    before = compute_hashes(workspace, distributions=no_distributions)
    assert before["total"].code == before["sign"].code == analyze_source(source).code_hash
    tree({"calculations/p/totals.py": source.replace("else 0", "else None")})
    after = compute_hashes(workspace, distributions=no_distributions)
    assert before["total"].code != after["total"].code


def test_layer_importing_the_entry_module_uses_the_whole_module(tree, no_distributions) -> None:
    root = tree(
        {
            "calculations/p/totals.py": "from layers import back\n" + TOTALS,
            "layers/__init__.py": "",
            "layers/back.py": "from totals import sign\n",
        }
    )
    hashes = compute_hashes(_two_entry_workspace(root), distributions=no_distributions)
    assert hashes["total"].code == hashes["sign"].code


_CHILD = """
import json, sys
sys.path.insert(0, {tests!r})
from btbuild.hashing import analyze_source
facts = analyze_source({source!r})
print(json.dumps([facts.entry_code_hash(n) for n in ("total", "sign", "uses_registry")]))
"""


def test_entry_hashes_do_not_depend_on_the_hash_seed() -> None:
    source = (
        TOTALS
        + "REGISTRY = []\n@REGISTRY.append\ndef a():\n    return 1\ndef uses_registry():\n    return REGISTRY\n"
    )
    code = _CHILD.format(tests=str(Path(__file__).parent), source=source)
    outputs = json_under_hash_seeds(code, ("0", "4242"))
    facts = analyze_source(source)
    local = [facts.entry_code_hash(n) for n in ("total", "sign", "uses_registry")]
    assert outputs[0] == outputs[1] == local


def test_entry_classes_sharing_a_base_and_helpers_stay_independent() -> None:
    source = """\
        import math
        class Base:
            def scale(self, x):
                return x * 2
        def helper(x):
            return math.sqrt(x)
        class Total(Base):
            @staticmethod
            def part(x):
                return helper(x)
            def process(self, ctx):
                return self.scale(self.part(4))
        class Sign(Base):
            @property
            def unit(self):
                return helper(1)
            def process(self, ctx):
                return self.scale(self.unit)
        """
    assert changed(source, source.replace("part(4)", "part(5)"), "Total", "Sign") == {"Total"}
    assert changed(source, source.replace("helper(1)", "helper(2)"), "Total", "Sign") == {"Sign"}
    assert changed(source, source.replace("x * 2", "x * 3"), "Total", "Sign") == {"Total", "Sign"}


def test_imported_base_classes_may_register_subclasses() -> None:
    source = """\
        from layers.framework import Calc
        class Total(Calc):
            def process(self, ctx):
                return 1
        class Sign(Calc):
            def process(self, ctx):
                return 2
        """
    after = source.replace("return 2", "return 3")
    assert changed(source, after, "Total", "Sign") == {"Total", "Sign"}
