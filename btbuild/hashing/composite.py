"""Per-target hashes: each component on its own (for ``explain``) and combined.

``static`` covers everything about a target itself: normalized code, layers,
infrastructure, epoch and the parts of its declaration that change behaviour. The
analysis stage decides re-runs from ``static`` plus the *result hashes* of the deps (that
is what allows early cutoff). ``composite`` additionally folds in the upstream targets'
composite hashes (a Merkle hash over the dependency graph); ``btbuild hash`` shows it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from btbuild.graph.graph import graph_of
from btbuild.hashing.cache import HashCache
from btbuild.hashing.datafiles import DataFiles
from btbuild.hashing.definitions import LayerSlices, layer_slices
from btbuild.hashing.digest import hash_json
from btbuild.hashing.infra import (
    HASH_SCHEME_VERSION,
    DistributionIndex,
    check_extra_inputs,
    infra_hash,
)
from btbuild.hashing.layers import FactsReader, LayerScan, LayerScanner, relative_posix
from btbuild.hashing.runtime import RuntimeInputs
from btbuild.workspace.model import Segment, Target, Workspace


@dataclass(frozen=True)
class TargetHashes:
    """Every hash component of one target; all hashes are 32-hex xxh3_128 digests."""

    name: str
    label: str
    code: str  # normalized entry class/function and the module statements it needs
    layers: str  # the definitions it reaches in workspace-local modules, transitively
    infra: str  # python minor, scheme version, third-party versions, plugin inputs
    epoch: int  # the workspace epoch (a value, not a hash, so explain can print it)
    declaration: str  # kind, roots, optional_roots, historical, lookback, entry attr
    static: str  # all of the above: what the analysis stage compares with dep result hashes
    deps: str  # Merkle hash over the upstream targets' composite hashes
    composite: str  # static + deps
    layer_files: tuple[str, ...]  # workspace-relative posix paths, sorted
    distributions: tuple[tuple[str, str], ...]  # (distribution, version), sorted
    upstream: tuple[tuple[str, str], ...]  # (dep target name, its composite hash), sorted
    # layer files hashed as a whole, with the reason (star import, module object, dynamic...)
    layer_whole: tuple[tuple[str, str], ...] = ()
    # data files the code names (btbuild/hashing/datafiles.py), in the infra hash
    data_files: tuple[str, ...] = ()
    # run-time reads in the infra hash (btbuild/hashing/runtime.py): "env:NAME", "env:*",
    # "clock:today", "docs:<path>", "source:<path>"
    runtime: tuple[str, ...] = ()


def declaration_hash(
    target: Target, segment: Segment | None = None, predicate_code: str = ""
) -> str:
    """The parts of a target's declaration that change what a cell computes.

    Not included: schedule (which dates run, not what they compute), product_lines,
    checks (metadata and validation), ttl_days and alert (what happens to a result after it
    is computed), deps (covered by the deps component), the entry file's path (its content
    is the code component) and the package (cell identity). The user segment's definition
    (``segment``, the one ``target.users`` names), the dependency look-back and the output
    schema are included only when set, so targets without them keep their hashes. The
    schema is included because a stored result was validated against the schema of its
    build only: a changed schema re-runs the target's cells, so every result is checked
    against it (dependents re-run only if a result differs), and simulations of dependents
    draw their dep values from it.
    """
    declaration: dict[str, object] = {
        "kind": target.kind,
        "entry_attr": target.entry_attr,
        "roots": sorted(target.roots),
        "optional_roots": sorted(target.optional_roots),
        "historical": target.historical,
        "lookback": sorted([source, days] for source, days in target.lookback),
    }
    if target.users is not None:
        users = {"name": target.users, **(segment.definition() if segment else {})}
        if predicate_code:  # the segment's plugin predicate's code (btbuild/plugins/code.py)
            users["code"] = predicate_code
        declaration["users"] = users
    if target.dep_lookback:
        declaration["dep_lookback"] = [[label, days] for label, days in target.dep_lookback]
    if target.schema_json is not None:
        declaration["schema"] = target.schema_json  # canonical JSON text: formatting never counts
    if target.stream_deps:  # ctx.dep is then a Mapping, not a dict: code may behave otherwise
        declaration["stream_deps"] = True
    return hash_json(declaration)


def combine_static(*, code: str, layers: str, infra: str, epoch: int, declaration: str) -> str:
    return hash_json(
        {
            "scheme": HASH_SCHEME_VERSION,
            "code": code,
            "layers": layers,
            "infra": infra,
            "epoch": epoch,
            "declaration": declaration,
        }
    )


def code_key(hashes: TargetHashes) -> str:
    """A target's code as a cache record keeps it (``record.code_hash``): its entry code and
    layers; the simulation registry (btbuild.sim) keys SimHashes by it too."""
    return _code_key(hashes.code, hashes.layers)


def _code_key(code: str, layers: str) -> str:
    return hash_json([code, layers])


def deps_hash(upstream: Mapping[str, str]) -> str:
    """Merkle step: hash of sorted (dep name, dep composite) pairs."""
    return hash_json(sorted(upstream.items()))


def composite_hash(static: str, deps: str) -> str:
    return hash_json({"static": static, "deps": deps})


def compute_hashes(
    workspace: Workspace,
    *,
    extra_infra: Mapping[str, str] | None = None,
    cache: HashCache | None = None,
    distributions: DistributionIndex | None = None,
    predicate_code: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, TargetHashes]:
    """Hash every target of ``workspace``; the result is keyed by target name.

    ``extra_infra`` are the plugin-provided infrastructure inputs. ``cache`` (e.g.
    :meth:`HashCache.for_workspace`) makes unchanged files free; it is saved before
    returning. ``distributions`` replaces the installed-package lookup (tests).
    ``predicate_code``: segment predicate name -> its plugin's code (Plugins.predicate_code).
    ``environ``: the environment variables the code may read (default: this process's).
    """
    extra = check_extra_inputs(extra_infra or {})
    index = distributions if distributions is not None else DistributionIndex.installed()
    reader = FactsReader(cache, keys=True)
    scanner = LayerScanner(workspace.root, reader)
    data = DataFiles(workspace.root)
    runtime = RuntimeInputs(workspace.root, data, environ)
    by_label = workspace.by_label()
    results: dict[str, TargetHashes] = {}
    for label in graph_of(workspace).order:  # deps first
        target = by_label[label]
        upstream = {
            by_label[dep].name: results[by_label[dep].name].composite for dep in target.deps
        }
        segment = workspace.segments.get(target.users or "")
        code = (predicate_code or {}).get(segment.predicate or "", "") if segment else ""
        declaration = declaration_hash(target, segment, code)
        scan = scanner.scan(target.entry_file)
        sources = (target.entry_file, *scan.files)
        files = {**data.inputs(sources, reader), **runtime.inputs(sources, reader)}
        results[target.name] = _target_hashes(
            workspace,
            target,
            upstream,
            scan,
            reader,
            index,
            {**extra, **files},
            declaration,
        )
    if cache is not None:
        cache.save()
    return {name: results[name] for name in workspace.targets}


def _code_and_layers(
    root: Path, target: Target, scan: LayerScan, reader: FactsReader
) -> tuple[str, LayerSlices]:
    """The code hash and layer slices of ``target`` (``scan``: its entry file's scan)."""
    # only what the entry needs from its module, unless the module is imported again
    # (then any of its statements can be reached through the module object)
    code = (
        reader(target.entry_file).code_hash
        if scan.imports_entry or scan.any_module
        else reader.entry_code(target.entry_file, target.entry_attr)
    )
    slices = layer_slices(
        target.entry_file,
        target.entry_attr,
        root,
        reader,
        all_files=scan.files,
        imports_entry=scan.imports_entry,
        any_module=scan.any_module,
    )
    return code, slices


def code_key_of(workspace: Workspace, target: Target) -> str:
    """:func:`code_key` of ``target`` hashed afresh from the files as they are now (nothing
    cached, nothing recorded as the build's keys): whether a copy of old code (a source
    snapshot) is the code a key names."""
    reader = FactsReader(None)
    scan = LayerScanner(workspace.root, reader).scan(target.entry_file)
    code, slices = _code_and_layers(workspace.root, target, scan, reader)
    return _code_key(code, slices.digest)


def _target_hashes(
    workspace: Workspace,
    target: Target,
    upstream: dict[str, str],
    scan: LayerScan,
    reader: FactsReader,
    index: DistributionIndex,
    extra: Mapping[str, str],
    declaration: str,
) -> TargetHashes:
    """Every hash of one target, given its deps' composite hashes (``upstream``, by name)."""
    versions = index.versions_for(scan.third_party)
    code, slices = _code_and_layers(workspace.root, target, scan, reader)
    layers = slices.digest
    infra = infra_hash(versions, extra)
    static = combine_static(
        code=code, layers=layers, infra=infra, epoch=workspace.epoch, declaration=declaration
    )
    deps = deps_hash(upstream)
    return TargetHashes(
        name=target.name,
        label=target.label,
        code=code,
        layers=layers,
        infra=infra,
        epoch=workspace.epoch,
        declaration=declaration,
        static=static,
        deps=deps,
        composite=composite_hash(static, deps),
        layer_files=tuple(relative_posix(path, workspace.root) for path in slices.files),
        distributions=tuple(versions.items()),
        upstream=tuple(sorted(upstream.items())),
        layer_whole=slices.whole,
        data_files=tuple(key[5:] for key in extra if key.startswith("file:")),
        runtime=tuple(key for key in extra if key.startswith(_RUNTIME_KINDS)),
    )


_RUNTIME_KINDS = ("env:", "clock:", "docs:", "source:")
