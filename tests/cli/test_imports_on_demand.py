"""Issue 14: commands import only what they use (hypothesis, sqlite-utils/pandas, hashing, the
simulation, what runs cells, psutil, the reference JSON Schema implementation, Firestore).

Each command runs in a fresh interpreter, which then lists the heavy modules it imported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT_BUILD = """\
[workspace]
name = "imports"
plugins = ["plugins.src"]
start_date = "2024-01-01"
"""

PLUGIN = """\
from datetime import date

from btbuild import MemorySource, hookimpl


class Users(MemorySource):
    def available(self, day):
        return True

    def fingerprint(self, day):
        return "v1"

    def users(self, day):
        for index in range(60):
            yield f"u{index:03d}", {"x": index}


@hookimpl
def btbuild_root_sources():
    return [Users("book", "user")]
"""

CALC_BUILD = """\
[calculation.double]
entry = "calc:double"
roots = ["book"]
schema = { type = "integer", minimum = 0 }

[calculation.total]
entry = "calc:total"
kind = "per_date"
deps = [":double"]
"""

CALC = """\
def double(ctx):
    return ctx.user["book"]["x"] * 2


def total(ctx):
    return sum(ctx.dep("double").values())
"""

HEAVY = (
    "hypothesis",
    "sqlite_utils",
    "pandas",
    "numpy",
    "libcst",
    "coverage",
    "google",
    "psutil",
    "jsonschema",  # the reference implementation (jsonschema_rs checks a valid schema)
)
# btbuild's own modules a no-op never needs: the sim judge, what runs cells, Firestore
UNUSED = (
    "btbuild.sim",
    "btbuild.execution.runner",
    "btbuild.execution.fused",
    "btbuild.execution.per_user",
    "btbuild.execution.environment",
    "btbuild.storage.firestore",
)

PROBE = """\
import json, sys
from btbuild.cli.main import main
code = main(sys.argv[3:])
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[1].split(",")))
unused = [m for m in sys.argv[2].split(",") if any(n == m or n.startswith(m + ".") for n in sys.modules)]
print(json.dumps({"code": code, "heavy": heavy + unused, "hashing": "btbuild.hashing" in sys.modules}))
"""


def workspace(tmp_path: Path) -> Path:
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "src.py").write_text(PLUGIN)
    (tmp_path / "BUILD.toml").write_text(ROOT_BUILD)
    (tmp_path / "calculations" / "calc").mkdir(parents=True)
    (tmp_path / "calculations" / "calc" / "BUILD.toml").write_text(CALC_BUILD)
    (tmp_path / "calculations" / "calc" / "calc.py").write_text(CALC)
    return tmp_path


def probe(root: Path, *argv: str) -> dict:
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            PROBE,
            ",".join(HEAVY),
            ",".join(UNUSED),
            "--workspace",
            str(root),
            *argv,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_noop_build_and_query_import_nothing_heavy(tmp_path: Path) -> None:
    root = workspace(tmp_path)
    build = ["build", "//...", "--date", "2024-01-02", "--format", "json"]
    cold = probe(root, *build)
    assert cold["code"] == 0
    assert "btbuild.sim" in cold["heavy"] and "psutil" in cold["heavy"]  # the probe sees them
    noop = probe(root, *build)
    assert noop == {"code": 0, "heavy": [], "hashing": True}
    query = probe(root, "query", "deps(//calc:total)")
    assert query == {"code": 0, "heavy": [], "hashing": False}
