from __future__ import annotations

from pathlib import Path

from hashing_helpers import CALC, make_target, make_workspace_value

from btbuild.hashing import LayerScanner, compute_hashes, layer_files, resolve_module


def test_resolve_module_prefers_first_search_dir(tree) -> None:
    root = tree({"pkg/helpers.py": "", "calculations/p/helpers.py": "", "lib/util/__init__.py": ""})
    entry_dir = root / "calculations" / "p"
    assert resolve_module("helpers", [entry_dir, root]) == entry_dir / "helpers.py"
    assert resolve_module("pkg.helpers", [entry_dir, root]) == root / "pkg" / "helpers.py"
    assert resolve_module("lib.util", [entry_dir, root]) == root / "lib" / "util" / "__init__.py"
    assert resolve_module("numpy", [entry_dir, root]) is None
    assert resolve_module("", [root]) is None


def test_module_file_wins_over_package_in_same_dir(tree) -> None:
    root = tree({"m.py": "", "m/__init__.py": ""})
    assert resolve_module("m", [root]) == root / "m.py"


def test_transitive_layers_with_every_import_form(tree) -> None:
    root = tree(
        {
            "calculations/p/calc.py": """\
                import layers.profiling as prof
                from layers import stats
                from .local_helper import thing
                def process(ctx):
                    import layers.lazy
                    return prof, stats, thing, layers.lazy
                """,
            "calculations/p/local_helper.py": "from layers.deep import x\nthing = x\n",
            "layers/__init__.py": "",
            "layers/profiling.py": "import json\n",
            "layers/stats.py": "from . import common\n",
            "layers/common.py": "",
            "layers/lazy.py": "",
            "layers/deep.py": "x = 1\n",
            "layers/unused.py": "",
        }
    )
    found = layer_files(root / "calculations/p/calc.py", root)
    rel = [path.relative_to(root).as_posix() for path in found]
    assert rel == sorted(rel)
    assert set(rel) == {
        "calculations/p/local_helper.py",
        "layers/__init__.py",
        "layers/common.py",
        "layers/deep.py",
        "layers/lazy.py",
        "layers/profiling.py",
        "layers/stats.py",
    }


def test_import_cycles_between_layers_terminate(tree) -> None:
    root = tree({"calc.py": "import a\n", "a.py": "import b\n", "b.py": "import a\nimport calc\n"})
    assert [p.name for p in layer_files(root / "calc.py", root)] == ["a.py", "b.py"]


def test_third_party_and_stdlib_are_not_layers(tree) -> None:
    root = tree(
        {
            "calc.py": "import os, json\nimport numpy as np\nfrom xxhash import xxh3_64\nimport layers_ns.tool\n",
            "layers_ns/tool.py": "import requests.adapters\n",
        }
    )
    scan = LayerScanner(root).scan(root / "calc.py")
    assert [p.relative_to(root).as_posix() for p in scan.files] == ["layers_ns/tool.py"]
    assert scan.third_party == ("numpy", "requests", "xxhash")


def test_namespace_folder_is_local_not_third_party(tree) -> None:
    root = tree({"calc.py": "import layers\nfrom layers import missing\n", "layers/readme.txt": ""})
    assert LayerScanner(root).scan(root / "calc.py").third_party == ()


def test_helper_used_by_three_of_five_calcs_changes_exactly_those(tree, no_distributions) -> None:
    files = {"layers/helper.py": "def scale(x):\n    return x * 2\n", "layers/other.py": "K = 1\n"}
    for index in range(5):
        module = "layers.helper" if index < 3 else "layers.other"
        use = "scale(1)" if index < 3 else "K"
        files[f"calculations/p/c{index}.py"] = (
            f"import {module}\n\n\nclass Calc:\n    def process(self, ctx):\n"
            f"        return {module}.{use}\n"
        )
    root = tree(files)
    workspace = make_workspace_value(root, [make_target(root, f"c{index}") for index in range(5)])
    before = compute_hashes(workspace, distributions=no_distributions)

    tree({"layers/helper.py": "def scale(x):\n    # cosmetic\n    return x * 2\n"})
    assert compute_hashes(workspace, distributions=no_distributions) == before

    tree({"layers/helper.py": "def scale(x):\n    return x * 3\n"})
    after = compute_hashes(workspace, distributions=no_distributions)
    changed = {name for name in before if before[name].composite != after[name].composite}
    assert changed == {"c0", "c1", "c2"}
    for name in changed:
        assert before[name].code == after[name].code
        assert before[name].layers != after[name].layers
    assert after["c0"].layer_files == ("layers/helper.py",)


def test_layer_path_is_part_of_layer_hash(tree, no_distributions) -> None:
    root = tree(
        {
            "calculations/p/c.py": f"import lib_a\n{CALC}",
            "lib_a.py": "X = 1\n",
            "lib_b.py": "X = 1\n",
        }
    )
    workspace = make_workspace_value(root, [make_target(root, "c")])
    first = compute_hashes(workspace, distributions=no_distributions)["c"]
    tree({"calculations/p/c.py": f"import lib_b as lib_a\n{CALC}"})
    second = compute_hashes(workspace, distributions=no_distributions)["c"]
    assert first.layers != second.layers


def test_layer_files_are_relative_posix(tree, no_distributions) -> None:
    root = tree(
        {"calculations/p/c.py": f"from layers.sub import mod\n{CALC}", "layers/sub/mod.py": ""}
    )
    workspace = make_workspace_value(root, [make_target(root, "c")])
    assert compute_hashes(workspace, distributions=no_distributions)["c"].layer_files == (
        "layers/sub/mod.py",
    )
    assert isinstance(root, Path)
