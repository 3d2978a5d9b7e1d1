"""The frozen configuration value every plugin hook may ask for (``config``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from btbuild.errors import ConfigError


def _freeze(value: object) -> object:
    if isinstance(value, Mapping):
        return MappingProxyType({str(k): _freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value


@dataclass(frozen=True)
class PluginConfig:
    """What a plugin may read: the workspace root and the ``[plugin.<name>]`` tables.

    ``settings`` maps a plugin's short name (``market`` for ``[plugin.market]``) to its table,
    frozen: nested tables are read-only mappings and arrays are tuples.
    """

    root: Path
    build_file: Path
    settings: Mapping[str, Mapping[str, object]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, table in self.settings.items():
            if not isinstance(table, Mapping):
                raise ConfigError(
                    f"[plugin.{name}] must be a table of settings, got {type(table).__name__}",
                    path=self.build_file,
                )
        object.__setattr__(self, "settings", _freeze(self.settings))

    def settings_for(self, plugin: str) -> Mapping[str, object]:
        """The ``[plugin.<plugin>]`` table, or an empty mapping when the file has none."""
        return self.settings.get(plugin, MappingProxyType({}))

    def error(self, plugin: str, message: str) -> ConfigError:
        """A ConfigError that names the BUILD.toml and the ``[plugin.<plugin>]`` table."""
        return ConfigError(f"[plugin.{plugin}] {message}", path=self.build_file)

    def check_keys(
        self, plugin: str, known: Mapping[str, object] | set[str]
    ) -> Mapping[str, object]:
        """Return the plugin's table after refusing keys outside ``known``."""
        table = self.settings_for(plugin)
        unknown = sorted(set(table) - set(known))
        if unknown:
            raise self.error(
                plugin,
                f"unknown setting {unknown[0]!r}; expected one of {', '.join(sorted(known))}",
            )
        return table
