"""Plugins: the hook specifications, the plugin manager and the root data sources.

Write a plugin with :data:`hookimpl`; see ``docs/plugins.md`` and :mod:`btbuild.plugins.hookspecs`.
"""

from __future__ import annotations

from btbuild.plugins.config import PluginConfig
from btbuild.plugins.hookspecs import hookimpl, hookspec
from btbuild.plugins.manager import Plugins, load_plugins, read_plugin_settings
from btbuild.plugins.rootindex import RootIndex
from btbuild.plugins.sources import MemorySource, RootSource, Scope
from btbuild.plugins.validators import ResultValidator

__all__ = [
    "MemorySource",
    "PluginConfig",
    "Plugins",
    "ResultValidator",
    "RootIndex",
    "RootSource",
    "Scope",
    "hookimpl",
    "hookspec",
    "load_plugins",
    "read_plugin_settings",
]
