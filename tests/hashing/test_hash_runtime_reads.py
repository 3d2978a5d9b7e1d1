"""What calculation code reads besides its code is an input: environment variables, its
docstrings or source text, modules it imports dynamically (btbuild/hashing/reads.py)."""

from __future__ import annotations

import json

from hashing_helpers import make_target, make_workspace_value

from btbuild.hashing import compute_hashes, hash_report, render_text
from btbuild.hashing.facts import analyze_source

ENV_ENTRY = """\
import os
from helpers import mode

RATE = float(os.environ.get("RATE", "1"))


class Calc:
    def process(self, ctx):
        return RATE * mode()
"""
ENV_LAYER = "from os import getenv\n\n\ndef mode():\n    return 2 if getenv('MODE') else 1\n"
PLAIN = "class Calc:\n    def process(self, ctx):\n        return 1\n"


def _hashes(tree, files, names, no_distributions, environ):  # type: ignore[no-untyped-def]
    root = tree(files)
    workspace = make_workspace_value(root, [make_target(root, name) for name in names])
    return compute_hashes(workspace, distributions=no_distributions, environ=environ)


def test_an_environment_variable_the_code_reads_is_an_input(tree, no_distributions):
    """Red team: a calculation reading ``os.environ["RATE"]`` kept every cell up to date
    when RATE changed: no hash moved (stale results, exit 0)."""
    files = {
        "calculations/p/reader.py": ENV_ENTRY,
        "calculations/p/helpers.py": ENV_LAYER,
        "calculations/p/plain.py": PLAIN,
    }

    def hashes(environ):  # type: ignore[no-untyped-def]
        return _hashes(tree, files, ("reader", "plain"), no_distributions, environ)

    unset = hashes({})
    assert unset["reader"].runtime == ("env:MODE", "env:RATE")
    report = hash_report(unset, ["//p:reader"])
    assert "env:MODE, env:RATE" in render_text(report)
    assert json.loads(json.dumps(report))["targets"][0]["env_vars"] == ["MODE", "RATE"]
    seen = {unset["reader"].infra}
    for environ in ({"RATE": ""}, {"RATE": "2"}, {"RATE": "2", "MODE": "x"}):
        moved = hashes({**environ, "UNRELATED": "1"})
        assert moved["reader"].infra not in seen  # unset, empty and each value all differ
        assert (moved["reader"].code, moved["reader"].layers) == (
            unset["reader"].code,
            unset["reader"].layers,
        )
        assert moved["plain"].static == unset["plain"].static  # only the readers move
        seen.add(moved["reader"].infra)


def test_a_variable_read_by_a_computed_name_makes_the_environment_an_input(tree, no_distributions):
    """``os.environ[name]`` or ``dict(os.environ)`` may read any variable: the whole
    environment but its volatile bookkeeping (PWD, SHLVL, BTBUILD_*...) is the input."""
    for code in ("os.environ[name]", "dict(os.environ)[name]", "os.getenv(name)"):
        entry = (
            "import os\n\n\nclass Calc:\n    def process(self, ctx, name='X'):\n"
            f"        return {code}\n"
        )
        files = {"calculations/p/reader.py": entry}

        def hashes(environ, files=files):  # type: ignore[no-untyped-def]
            return _hashes(tree, files, ("reader",), no_distributions, environ)["reader"]

        base = hashes({"PWD": "/a", "X": "1"})
        assert base.runtime == ("env:*",), code
        assert (
            hashes({"PWD": "/b", "SHLVL": "2", "BTBUILD_FUSE": "0", "X": "1"}).infra == base.infra
        )
        assert hashes({"PWD": "/a", "X": "2"}).infra != base.infra
        assert hashes({"PWD": "/a", "X": "1", "Y": ""}).infra != base.infra


def test_reads_are_found_in_every_spelling():
    source = """\
import os, os as o
from os import environ

A = os.environ["A"]
if "B" in os.environ and "B2" not in environ:
    o.environ.setdefault("C", "1")
D = environ.get("D"), os.getenv("E", "x")
"""
    assert analyze_source(source).env == ("A", "B", "B2", "C", "D", "E")
    assert analyze_source("import os\nfor k in os.environ:\n    pass\n").env == ("*",)
    assert analyze_source("import os\nX = os.environ\n").env == ("*",)
    assert analyze_source("import os\nX = os.environ.copy()\n").env == ("*",)
    assert analyze_source("def f(environ):\n    return 1\n").env == ()


DOC_ENTRY = '''\
"""Module docstring."""
from helpers import describe


class Calc:
    """Weights: 1, 2, 3."""

    def process(self, ctx):
        return [int(x) for x in self.__doc__.split(":")[1].split(",")] + [describe()]
'''
DOC_LAYER = 'def describe():\n    """layer text"""\n    return 1  # a comment\n'


def test_a_docstring_the_code_reads_is_an_input(tree, no_distributions):
    """Red team: the normalizer drops docstrings, so editing the docstring a calculation
    parses (``self.__doc__``) moved no hash: stale results, exit 0. Now the docstrings of
    the target's files are inputs (the code may read a layer's too); comments still are not."""
    files = {"calculations/p/reader.py": DOC_ENTRY, "calculations/p/helpers.py": DOC_LAYER}
    names = ("reader",)
    base = _hashes(tree, files, names, no_distributions, {})["reader"]
    assert base.runtime == ("docs:calculations/p/helpers.py", "docs:calculations/p/reader.py")
    edited = {**files, "calculations/p/reader.py": DOC_ENTRY.replace("1, 2, 3", "1, 2, 4")}
    assert _hashes(tree, edited, names, no_distributions, {})["reader"].infra != base.infra
    layer = {**files, "calculations/p/helpers.py": DOC_LAYER.replace("layer", "other")}
    assert _hashes(tree, layer, names, no_distributions, {})["reader"].infra != base.infra
    comment = {**files, "calculations/p/helpers.py": DOC_LAYER.replace("a comment", "note")}
    assert _hashes(tree, comment, names, no_distributions, {})["reader"].static == base.static
    # code not reading docstrings: a docstring edit is still cosmetic (nothing moves)
    plain = {"calculations/p/reader.py": DOC_ENTRY.replace("self.__doc__", "'a:1'")}
    before = _hashes(tree, plain, names, no_distributions, {})["reader"]
    plain = {"calculations/p/reader.py": plain["calculations/p/reader.py"].replace("3.", "4.")}
    assert before.runtime == ()
    assert _hashes(tree, plain, names, no_distributions, {})["reader"].static == before.static


SOURCE_ENTRY = """\
import inspect


class Calc:
    def process(self, ctx):
        return len(inspect.getsource(Calc))  # this comment counts
"""


def test_code_reading_its_own_source_text_has_its_raw_bytes_as_input(tree, no_distributions):
    """``inspect.getsource``, tracebacks and ``open(__file__)`` see comments and line numbers:
    the raw bytes of the target's files are inputs; ``Path(__file__).parent`` is not a read."""
    files = {"calculations/p/reader.py": SOURCE_ENTRY}
    base = _hashes(tree, files, ("reader",), no_distributions, {})["reader"]
    assert base.runtime == ("source:calculations/p/reader.py",)
    edited = {"calculations/p/reader.py": SOURCE_ENTRY.replace("counts", "counts!")}
    assert _hashes(tree, edited, ("reader",), no_distributions, {})["reader"].infra != base.infra
    for code, reads in (
        ("open(__file__).read()", ("source",)),
        ("pathlib.Path(__file__).read_text()", ("source",)),
        ("traceback.format_exc()", ("source",)),
        ("pathlib.Path(__file__).resolve().parent / 'x.json'", ()),
        ("os.path.join(os.path.dirname(os.path.abspath(__file__)), 'x')", ()),
    ):
        assert analyze_source(f"import os, pathlib, traceback\nX = {code}\n").reads == reads, code


def test_literal_dynamic_imports_resolve_like_imports(tree, no_distributions):
    """Red team: ``importlib.import_module("helpers")`` was not followed: editing helpers.py
    moved no hash of the target importing it that way."""
    entry = (
        "import importlib\n\n\nclass Calc:\n    def process(self, ctx):\n"
        "        return importlib.import_module('helpers').RATE\n"
    )
    files = {
        "calculations/p/reader.py": entry,
        "calculations/p/helpers.py": "RATE = 1\n",
        "calculations/p/other.py": "X = 1\n",
    }
    base = _hashes(tree, files, ("reader",), no_distributions, {})["reader"]
    assert base.layer_files == ("calculations/p/helpers.py",)
    edited = {**files, "calculations/p/helpers.py": "RATE = 2\n"}
    assert _hashes(tree, edited, ("reader",), no_distributions, {})["reader"].layers != base.layers


def test_a_computed_dynamic_import_makes_every_workspace_module_a_layer(tree, no_distributions):
    """``import_module(name)`` / ``sys.path.append(...)`` may load any module: every Python
    file of the workspace is a whole layer, and ``btbuild hash`` says why."""
    for code in ("importlib.import_module(ctx.name)", "sys.path.append('lib') or 1"):
        entry = (
            "import importlib, sys\n\n\nclass Calc:\n    def process(self, ctx):\n"
            f"        return {code}\n"
        )
        files = {
            "calculations/p/reader.py": entry,
            "lib/rules.py": "RATE = 1\n",
            "lib/broken.py": "def (:\n",  # not Python: it cannot be imported either
            ".venv/lib/x.py": "X = 1\n",
        }
        base = _hashes(tree, files, ("reader",), no_distributions, {})["reader"]
        assert base.layer_files == ("lib/rules.py",), code
        reason = dict(base.layer_whole)["lib/rules.py"]
        assert reason.startswith("may be imported: calculations/p/reader.py "), reason
        assert "[whole: may be imported" in render_text(hash_report({"r": base}, ["//p:reader"]))
        edited = {**files, "lib/rules.py": "RATE = 2\n"}
        assert _hashes(tree, edited, ("reader",), no_distributions, {})["reader"].layers != (
            base.layers
        )


def test_a_python_file_named_by_a_literal_is_a_data_file(tree, no_distributions):
    """``exec(open("rules.py").read())`` runs a file no import names: its bytes are an input."""
    entry = (
        "class Calc:\n    def process(self, ctx):\n        scope = {}\n"
        "        exec(open('calculations/p/rules.py').read(), scope)\n        return scope['R']\n"
    )
    files = {"calculations/p/reader.py": entry, "calculations/p/rules.py": "R = 1\n"}
    base = _hashes(tree, files, ("reader",), no_distributions, {})["reader"]
    assert base.data_files == ("calculations/p/rules.py",)
    edited = {**files, "calculations/p/rules.py": "R = 2\n"}
    assert _hashes(tree, edited, ("reader",), no_distributions, {})["reader"].infra != base.infra


def test_code_calling_the_clock_has_todays_date_as_input(tree, no_distributions):
    """Red team: ``(EXPIRY - date.today()).days`` gave another result the next day while every
    cell stayed up to date (exit 0). Today's date is now an input of such code (a daily re-run)."""
    from btbuild.hashing.runtime import RuntimeInputs

    entry = (
        "import datetime\n\n\nclass Calc:\n    def process(self, ctx):\n"
        "        return (datetime.date(2030, 1, 1) - datetime.date.today()).days\n"
    )
    root = tree({"calculations/p/reader.py": entry, "calculations/p/plain.py": PLAIN})
    workspace = make_workspace_value(root, [make_target(root, n) for n in ("reader", "plain")])
    first = compute_hashes(workspace, distributions=no_distributions, environ={})
    assert first["reader"].runtime == ("clock:today",) and first["plain"].runtime == ()
    assert "clock:today" in render_text(hash_report(first, ["//p:reader"]))
    from btbuild.hashing.layers import FactsReader

    reader = FactsReader()
    sources = (root / "calculations/p/reader.py",)
    days = [
        RuntimeInputs(root, None, {}, today=day).inputs(sources, reader)  # type: ignore[arg-type]
        for day in ("2024-01-01", "2024-01-02")
    ]
    assert days[0] != days[1]
    for code, clock in (
        ("datetime.datetime.now()", True),
        ("time.time()", True),
        ("time.localtime(0)", False),
        ("ctx.date.isoformat()", False),
    ):
        source = f"import datetime, time\n\n\ndef f(ctx):\n    return {code}\n"
        assert ("clock" in analyze_source(source).reads) is clock, code
