from __future__ import annotations

import json
import subprocess
import sys

import pytest

from btbuild.cli.main import main

FILES = {
    "BUILD.toml": '[workspace]\nname = "t"\n',
    "calculations/a/BUILD.toml": '[calculation.x]\nentry = "m:f"\n[calculation.y]\nentry = "m:f"\ndeps = [":x"]\nproduct_lines = ["stocks"]\n',
    "calculations/a/m.py": "def f(ctx):\n    return 1\n",
    "calculations/b/BUILD.toml": '[calculation.z]\nentry = "m:f"\ndeps = ["//a:y", "//a:x"]\nproduct_lines = ["crypto"]\n',
    "calculations/b/m.py": "def f(ctx):\n    return 1\n",
}


@pytest.fixture
def ws(make_workspace):
    return make_workspace(FILES)


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_label_output_and_passes(ws, capsys):
    assert run(capsys, "--workspace", str(ws), "query", "deps(//b:z)") == (
        0,
        "//a:x\n//a:y\n//b:z\n",
        "",
    )
    assert (
        run(capsys, "--workspace", str(ws), "query", "passes(//...)")[1]
        == "1 //a:x\n2 //a:y\n3 //b:z\n"
    )


def test_json_and_dot_output(ws, capsys):
    code, out, _ = run(
        capsys, "--workspace", str(ws), "query", "rdeps(//..., //a:x)", "--output", "json"
    )
    rows = json.loads(out)["targets"]
    assert code == 0 and [r["label"] for r in rows] == ["//a:x", "//a:y", "//b:z"]
    assert rows[2] == {"label": "//b:z", "pass": 3, "kind": "per_user", "deps": ["//a:y", "//a:x"]}
    code, out, _ = run(capsys, "--workspace", str(ws), "query", "deps(//a:y)", "--output", "dot")
    assert out == 'digraph btbuild {\n  "//a:x";\n  "//a:y";\n  "//a:y" -> "//a:x";\n}\n'


def test_product_line_slice(ws, capsys):
    code, out, _ = run(capsys, "--workspace", str(ws), "query", "//...", "--product-line", "stocks")
    assert out == "//a:x\n//a:y\n"


def test_walks_up_from_cwd(ws, capsys, monkeypatch):
    monkeypatch.chdir(ws / "calculations" / "b")
    assert run(capsys, "query", "//b:*")[1] == "//b:z\n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["query", "deps(//b:z"],
            "btbuild: error: expected ')' but found the end of the expression at column 11",
        ),
        (["query", "//b:nope"], "btbuild: error: no target //b:nope"),
        (["query", "x", "--output", "yaml"], "Invalid value for '--output'"),
    ],
)
def test_errors_are_one_line_exit_2(ws, capsys, argv, message):
    code, out, err = run(capsys, "--workspace", str(ws), *argv)
    assert code == 2 and out == ""
    assert message in err and "Traceback" not in err


def test_bad_workspace_is_exit_2_without_traceback(make_workspace):
    root = make_workspace(
        {**FILES, "calculations/a/BUILD.toml": '[calculation.x]\nentry = "m:f"\nknd = 1\n'}
    )
    proc = subprocess.run(
        [sys.executable, "-m", "btbuild", "--workspace", str(root), "query", "//..."],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "btbuild: error: calculations/a/BUILD.toml:3: //a:x: unknown key 'knd' (did you mean 'kind'?); "
        "allowed: entry, kind, deps, roots, optional_roots, historical, schedule, lookback, product_lines, checks, "
        "users, dep_lookback, schema, ttl_days, alert, stream_deps"
    )
    debug = subprocess.run(
        [sys.executable, "-m", "btbuild", "--debug", "--workspace", str(root), "query", "//..."],
        capture_output=True,
        text=True,
    )
    assert debug.returncode == 2 and "Traceback" in debug.stderr


def test_relative_patterns_inside_a_package(ws, capsys, monkeypatch):
    """Like Bazel: from a package folder, :all / :* / :name / ... / sub:name are relative."""
    monkeypatch.chdir(ws / "calculations" / "a")
    assert run(capsys, "query", ":all") == (0, "//a:x\n//a:y\n", "")
    assert run(capsys, "query", ":*")[1] == "//a:x\n//a:y\n"
    assert run(capsys, "query", ":y")[1] == "//a:y\n"
    assert run(capsys, "query", "rdeps(//..., :x) - :all")[1] == "//b:z\n"
    monkeypatch.chdir(ws / "calculations")
    assert run(capsys, "query", "...")[1] == "//a:x\n//a:y\n//b:z\n"
    assert run(capsys, "query", "b:z")[1] == "//b:z\n"
    assert run(capsys, "query", "b/...")[1] == "//b:z\n"


def test_relative_pattern_outside_a_package_is_one_clear_error(ws, capsys, monkeypatch):
    monkeypatch.chdir(ws)
    code, out, err = run(capsys, "query", ":all")
    assert code == 2 and out == ""
    assert "relative pattern ':all' needs a package" in err and "//package:all" in err
    monkeypatch.chdir(ws / "calculations" / "a")
    code, _, err = run(capsys, "query", ":nope")
    assert code == 2 and "no target :nope (//a:nope)" in err
