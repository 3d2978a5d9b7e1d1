"""The compiled-code cache (``.btbuild/bytecode``, btbuild/execution/bytecode.py) under real
concurrent writers, a writer killed by SIGKILL mid-write, and entries torn or mixed by hand:
a reader only ever gets a whole entry or none (then it compiles the source), every build's
result equals a clean build's, and ``btbuild gc`` keeps exactly the entries of the current
sources (a killed writer's temporary file and older versions' entries go)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from btbuild.execution.bytecode import CACHE_FOLDER, _cached, entry_key
from tests.execution.conftest import Workspace, make_workspace

BUILD = '[calculation.konst]\nentry = "k:f"\nkind = "per_date"\nroots = ["prices"]\n'
SOURCE = "def f(ctx):\n    return {value}\n"
WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from btbuild.execution.bytecode import _store
    entry, value, rounds = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    code = compile(f"X = {value!r}\\n" + "Y = 1\\n" * 2000, "k.py", "exec")
    print("ready", flush=True)
    sys.stdin.readline()  # both writers start together
    for _ in range(rounds):
        _store(entry, code)
    """
)
TORN = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    write = Path.write_bytes
    report = open(os.dup(1), "w")  # the build sends sys.stdout elsewhere while it runs

    def torn(self, data):  # this test's own patch: half the entry, then wait to be killed
        if self.name.endswith(".tmp"):
            with open(self, "wb") as out:
                out.write(data[: len(data) // 2])
            print("torn", self, file=report, flush=True)
            time.sleep(600)
        return write(self, data)

    Path.write_bytes = torn
    from btbuild.cli.main import main
    sys.exit(main(sys.argv[1:]))
    """
)


def _workspace(root: Path, value: int) -> Workspace:
    ws = make_workspace(root)
    ws.write("calculations/k/BUILD.toml", BUILD)
    ws.write("calculations/k/k.py", SOURCE.format(value=value))
    return ws


def _entry(ws: Workspace) -> Path:
    path = str(ws.root / "calculations/k/k.py")
    import xxhash

    key = entry_key(path, xxhash.xxh3_128_hexdigest(Path(path).read_bytes()))
    return ws.root / CACHE_FOLDER / key[:2] / key


def _clean_value(tmp_path: Path, value: int) -> object:
    clean = _workspace(tmp_path / "clean", value)
    clean.build("//k:konst", date="2024-01-01")
    return clean.backend().read_result("konst", "2024-01-01")


def test_two_processes_writing_one_entry_never_leave_a_mixed_one(tmp_path: Path) -> None:
    entry = tmp_path / "cache" / "ab" / "entry"
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(entry), value, "150"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for value in ("first", "second")
    ]
    for writer in writers:
        assert writer.stdout is not None and writer.stdout.readline() == "ready\n"
    for writer in writers:
        assert writer.stdin is not None
        writer.stdin.write("go\n")
        writer.stdin.flush()
    seen = set()
    while any(writer.poll() is None for writer in writers):
        code = _cached(entry)
        if code is not None:  # whole, one writer's: never a mix of both
            space: dict[str, object] = {}
            exec(code, space)
            assert space["X"] in ("first", "second") and space["Y"] == 1
            seen.add(space["X"])
    assert [writer.wait() for writer in writers] == [0, 0]
    assert seen and _cached(entry) is not None
    assert [p.name for p in entry.parent.iterdir()] == ["entry"]  # no temporary file left


def test_a_build_killed_mid_write_of_an_entry_leaves_nothing_wrong(tmp_path: Path) -> None:
    expected = _clean_value(tmp_path, 1234567)
    ws = _workspace(tmp_path / "ws", 1234567)
    argv = ["--workspace", str(ws.root), "build", "//k:konst", "--date", "2024-01-01"]
    child = subprocess.Popen(
        [sys.executable, "-c", TORN, *argv],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.startswith("torn "), line
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
    torn = Path(line.split(" ", 1)[1].strip())
    assert torn.is_file() and not torn.with_name(torn.name.split(".")[0]).exists()
    ws.build("//k:konst", date="2024-01-01")
    assert ws.backend().read_result("konst", "2024-01-01") == expected
    assert _cached(_entry(ws)) is not None
    code, out, err = ws.cli("gc", "--format", "json")
    assert code == 0 and json.loads(out)["bytecode_entries"] >= 1, out + err
    assert not torn.exists() and _cached(_entry(ws)) is not None  # the current one is kept


@pytest.mark.parametrize("damage", ["truncated", "mixed"])
def test_a_torn_or_mixed_entry_is_compiled_again(tmp_path: Path, damage: str) -> None:
    expected = _clean_value(tmp_path, 7654321)
    ws = _workspace(tmp_path / "ws", 1234567)
    ws.build("//k:konst", date="2024-01-01")
    old = _entry(ws).read_bytes()  # the entry of the old source
    ws.write("calculations/k/k.py", SOURCE.format(value=7654321))
    ws.build("//k:konst", date="2024-01-01")
    entry = _entry(ws)
    new = entry.read_bytes()
    torn = {
        "truncated": new[: len(new) // 2],
        "mixed": new[:16] + old[16:],  # this entry's seal over the old source's code
    }[damage]
    entry.write_bytes(torn)
    ws.build("//k:konst", "--force", date="2024-01-01")
    assert ws.backend().read_result("konst", "2024-01-01") == expected
    assert entry.read_bytes() == new  # rewritten whole
    code, out, err = ws.cli("gc", "--format", "json")  # the old source's entry goes
    assert code == 0 and json.loads(out)["bytecode_entries"] == 1, out + err
    assert entry.read_bytes() == new
