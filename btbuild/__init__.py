"""btbuild: a build system for data.

The public facade: what calculation authors, plugin writers and scripts may import. Everything
else is internal and may change.
"""

from __future__ import annotations

from btbuild.errors import (
    BtbuildError,
    BuildFailed,
    CalculationError,
    ConfigError,
    CycleError,
    LabelError,
    PluginError,
    QueryError,
    StorageError,
    UsageError,
    WorkspaceError,
)
from btbuild.plugins.config import PluginConfig
from btbuild.plugins.hookspecs import hookimpl, hookspec
from btbuild.plugins.sources import MemorySource, RootSource
from btbuild.plugins.validators import ResultValidator
from btbuild.workspace.config import find_workspace_root, load_workspace

__version__ = "0.1.0"

__all__ = [
    "BtbuildError",
    "BuildFailed",
    "CalculationError",
    "ConfigError",
    "CycleError",
    "LabelError",
    "MemorySource",
    "PluginConfig",
    "PluginError",
    "QueryError",
    "ResultValidator",
    "RootSource",
    "StorageError",
    "UsageError",
    "WorkspaceError",
    "__version__",
    "find_workspace_root",
    "hookimpl",
    "hookspec",
    "load_workspace",
]
