"""Calculation code runs from the bytes the build hashed, never from a stale ``__pycache__``
(btbuild/execution/bytecode.py)."""

from __future__ import annotations

import importlib.util
import os
import py_compile
from pathlib import Path

BUILD = '[calculation.konst]\nentry = "k:f"\nkind = "per_date"\nroots = ["prices"]\n'


def _stale_pyc_then_edit(path: Path, old: str, new: str) -> None:
    """Python's own cache holds ``old``'s bytecode, valid by timestamp for ``new``: an edit
    keeping the size within the same second, or a file copied with its mtime."""
    assert len(old) == len(new)
    path.write_text(old)
    py_compile.compile(
        str(path),
        cfile=importlib.util.cache_from_source(str(path)),
        invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP,
    )
    stat = path.stat()
    path.write_text(new)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_a_stale_pycache_of_the_entry_file_is_never_run(ws):
    ws.write("calculations/k/BUILD.toml", BUILD)
    _stale_pyc_then_edit(
        ws.root / "calculations/k/k.py",
        "def f(ctx):\n    return 0.05\n",
        "def f(ctx):\n    return 0.06\n",
    )
    ws.build("//k:konst", date="2024-01-01")
    assert ws.backend().read_result("konst", "2024-01-01") == 0.06  # 0.05 before: exit 0


def test_a_stale_pycache_of_a_helper_is_never_run(ws):
    ws.write("calculations/k/BUILD.toml", BUILD)
    ws.write(
        "calculations/k/k.py",
        "import fees\nimport rates\n\n\ndef f(ctx):\n    return [rates.RATE, fees.FEE]\n",
    )
    _stale_pyc_then_edit(ws.root / "calculations/k/rates.py", "RATE = 0.05\n", "RATE = 0.07\n")
    _stale_pyc_then_edit(ws.root / "calculations/k/fees.py", "FEE = 0.01\n", "FEE = 0.02\n")
    ws.build("//k:konst", date="2024-01-01")
    assert ws.backend().read_result("konst", "2024-01-01") == [0.07, 0.02]


def test_a_damaged_bytecode_entry_is_compiled_again_never_run(ws):
    ws.write("calculations/k/BUILD.toml", BUILD)
    ws.write("calculations/k/k.py", "def f(ctx):\n    return 1234567\n")
    ws.build("//k:konst", date="2024-01-01")
    entries = [p for p in (ws.root / ".btbuild" / "bytecode").rglob("*") if p.is_file()]
    packed = (1234567).to_bytes(4, "little")
    (entry,) = [p for p in entries if packed in p.read_bytes()]
    entry.write_bytes(entry.read_bytes().replace(packed, (7654321).to_bytes(4, "little")))
    ws.build("//k:konst", "--force", date="2024-01-02")
    assert ws.backend().read_result("konst", "2024-01-02") == 1234567
    assert (1234567).to_bytes(4, "little") in entry.read_bytes()  # rewritten whole
