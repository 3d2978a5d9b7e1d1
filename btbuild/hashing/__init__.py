"""Hashing: normalized code, layers, infrastructure, epoch, declaration and dependencies.

See ``docs/hashing.md`` for what goes into each hash and what does not.
"""

from __future__ import annotations

from btbuild.hashing.cache import HashCache
from btbuild.hashing.composite import (
    TargetHashes,
    combine_static,
    composite_hash,
    compute_hashes,
    declaration_hash,
    deps_hash,
)
from btbuild.hashing.digest import hash_bytes, hash_json
from btbuild.hashing.facts import FileFacts, analyze_source
from btbuild.hashing.imports import ImportRecord, collect_imports, is_stdlib, resolve_module
from btbuild.hashing.infra import HASH_SCHEME_VERSION, DistributionIndex, infra_hash, python_minor
from btbuild.hashing.layers import FactsReader, LayerScan, LayerScanner, layer_files, layer_hash
from btbuild.hashing.normalize import code_hash, normalize_source
from btbuild.hashing.report import hash_report, render_text

__all__ = [
    "HASH_SCHEME_VERSION",
    "DistributionIndex",
    "FactsReader",
    "FileFacts",
    "HashCache",
    "ImportRecord",
    "LayerScan",
    "LayerScanner",
    "TargetHashes",
    "analyze_source",
    "code_hash",
    "collect_imports",
    "combine_static",
    "composite_hash",
    "compute_hashes",
    "declaration_hash",
    "deps_hash",
    "hash_bytes",
    "hash_json",
    "hash_report",
    "infra_hash",
    "is_stdlib",
    "layer_files",
    "layer_hash",
    "normalize_source",
    "python_minor",
    "render_text",
    "resolve_module",
]
