from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from btbuild.errors import ConfigError, CycleError
from btbuild.graph.graph import graph_of
from btbuild.workspace.config import find_workspace_root, load_workspace
from btbuild.workspace.model import Schedule

ROOT = '[workspace]\nname = "t"\n'
CALC = "class X:\n    def process(self, ctx):\n        return 1\n"


def tree(make_workspace, build: str, root: str = ROOT, extra: dict[str, str] | None = None) -> Path:
    files = {
        "BUILD.toml": root,
        "calculations/risk/BUILD.toml": build,
        "calculations/risk/x.py": CALC,
    }
    files.update(extra or {})
    return make_workspace(files)


def error_of(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_workspace(path)
    return str(info.value)


def test_full_target_table_is_loaded(make_workspace):
    root = tree(
        make_workspace,
        """
        [calculation.base]
        entry = "x:X"
        kind = "per_date"
        roots = ["prices"]

        [calculation.risk_score]
        entry = "x:X"
        deps = [":base"]
        roots = ["portfolio", "prices"]
        optional_roots = ["insights"]
        historical = true
        schedule = { weekdays = [4, 0] }
        lookback = { prices = 30 }
        product_lines = ["stocks"]
        checks = { null_density = 0.9 }
        """,
    )
    ws = load_workspace(root)
    target = ws.targets["risk_score"]
    assert target.label == "//risk:risk_score"
    assert target.deps == ("//risk:base",)
    assert target.kind == "per_user" and ws.targets["base"].kind == "per_date"
    assert target.schedule == Schedule(weekdays=(0, 4))
    assert target.lookback == (("prices", 30),)
    assert target.historical and target.optional_roots == ("insights",)
    assert target.checks == (("null_density", 0.9),)
    assert target.entry_file == root / "calculations/risk/x.py"
    assert target.line == 7
    assert ws.start_date == date(2024, 1, 1) and ws.epoch == 0


def test_workspace_settings(make_workspace):
    root = tree(
        make_workspace,
        "",
        root='[workspace]\nname = "t"\nepoch = 3\nstart_date = 2023-06-01\n'
        "[execution]\nflush_every = 10\nmemory_fraction = 0.5\n[plugin.market]\nusers = 5\n",
    )
    ws = load_workspace(root)
    assert ws.epoch == 3 and ws.start_date == date(2023, 6, 1)
    assert ws.execution.flush_every == 10 and ws.execution.memory_fraction == 0.5
    assert ws.execution.max_attempts == 3
    assert ws.plugin_settings == {"market": {"users": 5}}
    assert ws.storage.backend == "sqlite"


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (
            '[calculation.a]\nentry = "x:X"\nknd = "per_user"\n',
            "calculations/risk/BUILD.toml:3: //risk:a: unknown key 'knd' (did you mean 'kind'?)",
        ),
        (
            '[calculation.a]\nentry = "x:X"\nkind = "per_usr"\n',
            "calculations/risk/BUILD.toml:3: //risk:a: kind must be 'per_user' or 'per_date', got 'per_usr' (did you mean 'per_user'?)",
        ),
        (
            '[calculation.a]\nentry = "nope:X"\n',
            "calculations/risk/BUILD.toml:2: //risk:a: entry file calculations/risk/nope.py does not exist",
        ),
        ('[calculation.a]\nentry = "x"\n', "must look like 'module:ClassOrFunction'"),
        ("[calculation.a]\n", "missing required key 'entry'"),
        ('[calculation.Bad]\nentry = "x:X"\n', "target name 'Bad' must match"),
        (
            '[calculation.a]\nentry = "x:X"\ndeps = ["//risk:zz"]\n',
            "calculations/risk/BUILD.toml:3: //risk:a: unknown dependency //risk:zz",
        ),
        ('[calculation.a]\nentry = "x:X"\ndeps = ["b"]\n', "did you mean ':b'?"),
        ('[calculation.a]\nentry = "x:X"\ndeps = ["//../x:b"]\n', "'..' segment"),
        ('[calculation.a]\nentry = "x:X"\ndeps = ["/etc/x:b"]\n', "absolute paths are not labels"),
        ('[calculation.a]\nentry = "x:X"\ndeps = "//risk:b"\n', "deps must be a list of strings"),
        (
            '[calculation.a]\nentry = "x:X"\nhistorical = "yes"\n',
            "historical must be true or false",
        ),
        ('[calculation.a]\nentry = "x:X"\nschedule = "weekly"\n', "schedule must be"),
        ('[calculation.a]\nentry = "x:X"\nschedule = { weekdays = [7] }\n', "schedule must be"),
        (
            '[calculation.a]\nentry = "x:X"\nroots = ["prices"]\nlookback = { price = 3 }\n',
            "lookback names 'price', which is not in roots or optional_roots (did you mean 'prices'?)",
        ),
        (
            '[calculation.a]\nentry = "x:X"\nroots = ["prices"]\noptional_roots = ["prices"]\n',
            "in both roots and optional_roots",
        ),
        (
            '[calculation.a]\nentry = "x:X"\n[calcualtion.b]\nentry = "x:X"\n',
            "unknown table [calcualtion] (did you mean 'calculation'?)",
        ),
        ('[calculation.a\nentry = "x:X"\n', "calculations/risk/BUILD.toml:1: invalid TOML"),
        (
            '[calculation.a]\nentry = "x:X"\nstream_deps = true\n',
            "calculations/risk/BUILD.toml:3: //risk:a: stream_deps is for per_date targets",
        ),
        (
            '[calculation.a]\nentry = "x:X"\nkind = "per_date"\nstream_deps = 1\n',
            "//risk:a: stream_deps must be true or false, got 1",
        ),
    ],
)
def test_package_errors_name_file_line_and_target(make_workspace, build, expected):
    assert expected in error_of(tree(make_workspace, build))


@pytest.mark.parametrize(
    ("root", "expected"),
    [
        ("[workspace]\n", "BUILD.toml:1: missing required key 'name' in [workspace]"),
        (
            '[workspace]\nname = "t"\nplugin = []\n',
            "unknown key 'plugin' in [workspace] (did you mean 'plugins'?)",
        ),
        # [storage] backend names a plugin's backend: checked when the session opens it
        # (tests/storage/test_storage_plugin.py), not here
        (
            '[workspace]\nname = "t"\n[execution]\nmax_failure_rate = 2\n',
            "BUILD.toml:4: [execution] max_failure_rate must be a number from 0 to 1",
        ),
        ('[workspace]\nname = "t"\npackages = "../elsewhere"\n', "points outside the workspace"),
        ('[workspace]\nname = "t"\nstart_date = "soon"\n', "start_date must be a date"),
        (
            '[workspace]\nname = "t"\n[executor]\n',
            "unknown table [executor] (did you mean 'execution'?)",
        ),
        ('[workspace]\nname = "t"\nplugins = ["a/b"]\n', "is not a module name"),
    ],
)
def test_root_errors(make_workspace, root, expected):
    assert expected in error_of(tree(make_workspace, "", root=root))


def test_duplicate_names_across_packages(make_workspace):
    root = tree(
        make_workspace,
        '[calculation.a]\nentry = "x:X"\n',
        extra={
            "calculations/other/BUILD.toml": '\n[calculation.a]\nentry = "x:X"\n',
            "calculations/other/x.py": CALC,
        },
    )
    message = error_of(root)
    assert "duplicate target name 'a'" in message
    assert message.startswith("calculations/risk/BUILD.toml:1: ")
    assert "clashes with //other:a (calculations/other/BUILD.toml:2)" in message


def test_unknown_dependency_suggests_the_real_label(make_workspace):
    root = tree(
        make_workspace,
        '[calculation.a]\nentry = "x:X"\ndeps = ["//other:b"]\n',
        extra={
            "calculations/pricing/BUILD.toml": '[calculation.b]\nentry = "x:X"\n',
            "calculations/pricing/x.py": CALC,
        },
    )
    assert "unknown dependency //other:b (the target is //pricing:b)" in error_of(root)


def test_cycle_names_chain_and_files(make_workspace):
    root = tree(
        make_workspace,
        '[calculation.a]\nentry = "x:X"\ndeps = ["//pricing:b"]\n',
        extra={
            "calculations/pricing/BUILD.toml": '[calculation.b]\nentry = "x:X"\ndeps = ["//risk:a"]\n',
            "calculations/pricing/x.py": CALC,
        },
    )
    with pytest.raises(CycleError) as info:
        graph_of(load_workspace(root))
    assert str(info.value) == (
        "dependency cycle: //pricing:b -> //risk:a -> //pricing:b "
        "(in calculations/pricing/BUILD.toml, calculations/risk/BUILD.toml)"
    )


def test_find_workspace_root_walks_up(make_workspace):
    root = tree(make_workspace, "")
    assert find_workspace_root(root / "calculations" / "risk") == root.resolve()


def test_no_workspace(tmp_path):
    with pytest.raises(ConfigError, match="no workspace found"):
        find_workspace_root(tmp_path)


def test_sub_packages_get_nested_labels(make_workspace):
    root = tree(
        make_workspace,
        "",
        extra={
            "calculations/risk/credit/BUILD.toml": '[calculation.c]\nentry = "x:X"\n',
            "calculations/risk/credit/x.py": CALC,
        },
    )
    assert load_workspace(root).targets["c"].label == "//risk/credit:c"
