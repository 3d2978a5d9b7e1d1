"""Executors are plugins: the built-in ones and a third-party one are registered the same way
(``btbuild_executors``), and ``--executor`` picks among what is registered."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.execution.conftest import Workspace

TOY_PLUGIN = '''\
"""A third-party executor: runs each group in this process when submitted (sequentially),
through the dispatch path (futures), and logs the groups it ran."""
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path

from btbuild.execution.environment import Environment
from btbuild.execution.executors import Executor
from btbuild.execution.runner import run_group


class Toy(Executor):
    name = "toy"
    description = "in this process, one group at a time"

    def open(self, run):
        return self._submitting(run)

    @contextmanager
    def _submitting(self, run):
        env = Environment.of(run.context)
        log = Path(run.context.root) / "toy.log"

        def submit(group):
            future = Future()
            future.set_result(run_group(env, group))
            with log.open("a") as out:
                out.write(f"{group.label} {len(group.cells)}\\n")
            return future

        yield submit


def btbuild_executors():
    return [Toy()]
'''


def with_plugin(root: Path, module: str, text: str) -> Workspace:
    ws = Workspace(root)
    ws.write(f"plugins/{module}.py", text)
    ws.edit(
        "BUILD.toml",
        'plugins = ["btbuild.plugins.jsonl"]',
        f'plugins = ["btbuild.plugins.jsonl", "plugins.{module}"]',
    )
    return ws


def test_a_plugin_executor_builds_what_the_local_one_builds(ws: Workspace, tmp_path: Path) -> None:
    shutil.copytree(ws.root, tmp_path / "toy")
    toy = with_plugin(tmp_path / "toy", "toy_executor", TOY_PLUGIN)
    local = ws.build()
    report = toy.build("--executor", "toy")
    assert report["summary"] == local["summary"] and report["summary"]["ran"] == 12
    assert toy.cells(report) == ws.cells(local)
    ran = (toy.root / "toy.log").read_text().splitlines()
    # 3 dates x 3 passes (value and price_level; total; sign), all through it
    assert sorted(ran) == sorted(
        f"2024-01-0{day}_p{p} {n}" for day in (1, 2, 3) for p, n in ((1, 2), (2, 1), (3, 1))
    ), ran
    a, b = ws.backend(), toy.backend()
    for name in ("value", "total", "sign", "price_level"):
        for day in ("2024-01-01", "2024-01-02", "2024-01-03"):
            assert a.get_cell(name, day).result_hash == b.get_cell(name, day).result_hash
            assert a.read_result(name, day) == b.read_result(name, day)
    assert toy.build("--executor", "toy")["summary"]["ran"] == 0  # up to date
    assert len((toy.root / "toy.log").read_text().splitlines()) == 9  # nothing submitted


def test_an_unknown_executor_is_one_line_naming_the_registered_ones(ws: Workspace) -> None:
    code, _out, err = ws.cli("build", "//...", "--date", "2024-01-01", "--executor", "toy")
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert "--executor 'toy' is not a registered executor" in err
    assert "local (" in err and "pubsub (" in err


def test_two_plugins_registering_one_name_is_an_error(ws: Workspace) -> None:
    text = TOY_PLUGIN.replace('name = "toy"', 'name = "local"')
    with_plugin(ws.root, "other_local", text)
    code, _out, err = ws.cli("build", "//...", "--date", "2024-01-01")
    assert code != 0 and "Traceback" not in err, err
    assert "executor 'local' is provided by two plugins" in err, err
    assert "'btbuild.execution.plugin'" in err and "'plugins.other_local'" in err, err


def test_a_hook_returning_something_else_is_an_error(ws: Workspace) -> None:
    with_plugin(ws.root, "bad_exec", "def btbuild_executors():\n    return ['local']\n")
    code, _out, err = ws.cli("build", "//...", "--date", "2024-01-01")
    assert code != 0 and "Traceback" not in err, err
    assert "btbuild_executors must return Executor instances" in err, err


def test_execution_never_imports_the_session_or_the_cli() -> None:
    """The session wires execution; execution sits below it and gets an ExecutionContext."""
    import ast

    package = Path(__file__).resolve().parents[2] / "btbuild" / "execution"
    found = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for name in names:
                if name.startswith(("btbuild.session", "btbuild.cli")):
                    found.append(f"{path.relative_to(package)}:{node.lineno} imports {name}")
    assert not found, found
