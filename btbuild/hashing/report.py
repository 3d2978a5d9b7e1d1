"""The report behind ``btbuild hash PATTERN [--format json]``: a dict, and its text form."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from btbuild.errors import LabelError
from btbuild.hashing.composite import TargetHashes


def target_report(hashes: TargetHashes) -> dict[str, object]:
    return {
        "label": hashes.label,
        "name": hashes.name,
        "composite": hashes.composite,
        "static": hashes.static,
        "code": hashes.code,
        "layers": hashes.layers,
        "infra": hashes.infra,
        "declaration": hashes.declaration,
        "deps": hashes.deps,
        "epoch": hashes.epoch,
        "layer_files": list(hashes.layer_files),
        "layer_whole": dict(hashes.layer_whole),
        "distributions": dict(hashes.distributions),
        "data_files": list(hashes.data_files),
        "env_vars": [key[4:] for key in hashes.runtime if key.startswith("env:")],
        "runtime_reads": [key for key in hashes.runtime if not key.startswith("env:")],
        "upstream": dict(hashes.upstream),
    }


def hash_report(hashes: Mapping[str, TargetHashes], labels: Iterable[str]) -> dict[str, object]:
    """``{"targets": [...]}`` for the given labels (as matched by the pattern), sorted by label."""
    by_label = {entry.label: entry for entry in hashes.values()}
    selected = []
    for label in sorted(set(labels)):
        if label not in by_label:
            raise LabelError(f"no hashes for {label}: it is not a target of this workspace")
        selected.append(target_report(by_label[label]))
    return {"targets": selected}


def render_text(report: Mapping[str, Any]) -> str:
    """Human-readable form of :func:`hash_report`, one block per target."""
    blocks: list[str] = []
    for entry in report["targets"]:
        whole = entry.get("layer_whole", {})
        files = [
            f"{path} [whole: {whole[path]}]" if path in whole else path
            for path in entry["layer_files"]
        ]
        dists = entry["distributions"]
        infra = [f"{d} {v}" for d, v in dists.items()] + list(entry.get("data_files", []))
        infra += [f"env:{name}" for name in entry.get("env_vars", [])]
        infra += list(entry.get("runtime_reads", []))
        upstream = entry["upstream"]
        lines = [
            entry["label"],
            f"  composite    {entry['composite']}",
            f"  static       {entry['static']}",
            f"  code         {entry['code']}",
            f"  layers       {entry['layers']}  ({_listing(files)})",
            f"  infra        {entry['infra']}  ({_listing(infra)})",
            f"  declaration  {entry['declaration']}",
            f"  deps         {entry['deps']}  ({_listing(list(upstream))})",
            f"  epoch        {entry['epoch']}",
        ]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + ("\n" if blocks else "")


def _listing(items: list[str]) -> str:
    return ", ".join(items) if items else "none"
