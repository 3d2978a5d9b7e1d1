"""The code of the plugins that shape what calculations see, as part of their cells' keys.

A root source plugin decides what ``ctx.root`` and ``ctx.user`` hold: edit how it parses,
filters or converts its files and every cell reading the source computes something else,
although the files (and so their fingerprints) did not change. A segment predicate decides
which users a target's cells process. Their code therefore counts:

* a plugin module of the workspace (``[workspace] plugins``, a workspace file): the code
  hash of its file and of every workspace module it imports, transitively (the same
  normalization as calculations: comments and formatting never count);
* an installed plugin (an entry point): the installed version of its distribution;
* btbuild's own plugins: nothing (they are versioned with btbuild and its hash scheme).

A source's fingerprints are then salted with its plugin's code (:func:`salt_fingerprints`),
so only the cells reading that source see a change; a predicate's code is part of the
declaration hash of the targets whose segment uses it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path

import xxhash

import btbuild
from btbuild.errors import PluginError
from btbuild.plugins.sources import RootSource

_BTBUILD = Path(btbuild.__file__).resolve().parent


def plugin_code(plugin: object, root: Path) -> str:
    """What of a registered plugin's code counts ("" for btbuild's own plugins)."""
    module = plugin if hasattr(plugin, "__file__") else sys.modules.get(type(plugin).__module__)
    path = getattr(module, "__file__", None)
    if not path:
        return ""
    file = Path(path).resolve()
    if file.is_relative_to(_BTBUILD):
        return ""
    workspace = root.resolve()
    if file.is_relative_to(workspace):
        from btbuild.hashing.layers import FactsReader, LayerScanner, layer_hash  # only then

        reader = FactsReader()
        files = [file, *LayerScanner(workspace, reader).scan(file).files]
        return "code:" + layer_hash(files, workspace, reader)
    from btbuild.hashing.digest import hash_json
    from btbuild.hashing.infra import DistributionIndex

    top = getattr(module, "__name__", "").split(".")[0]
    versions = DistributionIndex.installed().versions_for([top])
    return "dist:" + hash_json(sorted(versions.items()) or [str(file)])


def salt_fingerprints(source: RootSource, code: str, plugin: str) -> None:
    """Make ``source.fingerprint(day)`` cover its plugin's ``code`` too (nothing if "")."""
    if not code:
        return
    raw: Callable[[date], str] = source.fingerprint

    def fingerprint(day: date) -> str:
        return xxhash.xxh3_128_hexdigest(f"{code}\n{raw(day)}".encode())

    try:
        setattr(source, "fingerprint", fingerprint)  # noqa: B010 - an instance's own method
    except AttributeError:
        raise PluginError(
            f"plugin {plugin!r}: root source {source.name!r} does not allow its fingerprint to "
            "be wrapped (give its class a __dict__): btbuild adds the plugin's code to it"
        ) from None
