"""``btbuild sim`` says how sources are typed and warns about degenerate fabricated outputs."""

from __future__ import annotations

import json
from pathlib import Path


def put(tmp_path: Path, relative: str, items: list[dict]) -> None:
    path = tmp_path / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(item) + "\n" for item in items))


def test_sim_warns_about_degenerate_outputs_and_notes_untyped_sources(
    tmp_path: Path, run_cli
) -> None:
    (tmp_path / "BUILD.toml").write_text(
        '[workspace]\nname = "j"\nplugins = ["btbuild.plugins.jsonl"]\nstart_date = "2024-01-02"\n'
        '[plugin.jsonl.sources]\nbook = "user"\n'
    )
    package = tmp_path / "calculations" / "p"
    package.mkdir(parents=True)
    (package / "BUILD.toml").write_text(
        '[calculation.value]\nentry = "value:value"\nroots = ["book"]\n'
    )
    (package / "value.py").write_text(
        'def value(ctx):\n    r = ctx.user["book"]\n    return r["qty"] * r["px"]\n'
    )
    code, text = run_cli("--workspace", str(tmp_path), "sim", "//p:value", parse=False)
    assert code == 0
    assert "note: source 'book': no schema declared and no data" in text
    assert "warning: //p:value: fabricated outputs are degenerate" in text
    put(
        tmp_path,
        "data/book/2024-01-02.jsonl",
        [{"user": f"u{i}", "record": {"qty": i, "px": 2.5 * i}} for i in range(1, 9)],
    )
    code, report = run_cli("--workspace", str(tmp_path), "sim", "//p:value", "--format", "json")
    assert code == 0
    (row,) = report["targets"]
    assert "warning" not in row
    assert any("inferred from 1 file(s)" in note for note in report["notes"])
