"""The infrastructure hash: everything outside the workspace that can change a result.

It covers the Python minor version, :data:`HASH_SCHEME_VERSION`, the installed version of
each third-party distribution a calculation (or one of its layers) imports, and extra
inputs contributed by plugins (passed in by the caller as a mapping; hashing itself never
talks to the plugin manager).
"""

from __future__ import annotations

import importlib.metadata
import sys
from collections.abc import Iterable, Mapping, Sequence
from functools import cache

from btbuild.errors import PluginError
from btbuild.hashing.digest import hash_json

HASH_SCHEME_VERSION = 3
"""Bump whenever normalization or the way components are combined changes: every hash moves.

2: per-entry code hash (statement slices), stdlib ``ast`` normalizer.
3: definition-level layers (only the definitions a target reaches through imports).
"""

NOT_INSTALLED = "not installed"


def python_minor() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


class DistributionIndex:
    """Maps an imported top-level module name to installed distributions and their versions.

    The default (:meth:`installed`) asks :mod:`importlib.metadata` once per process; tests
    pass explicit mappings.
    """

    def __init__(
        self,
        packages: Mapping[str, Sequence[str]] | None = None,
        versions: Mapping[str, str] | None = None,
    ) -> None:
        self._packages = packages
        self._versions = dict(versions) if versions is not None else None
        self._version_memo: dict[str, str] = {}

    @classmethod
    def installed(cls) -> DistributionIndex:
        return _installed_index()

    def distributions_for(self, top_level: str) -> tuple[str, ...]:
        if self._packages is None:
            self._packages = importlib.metadata.packages_distributions()
        return tuple(sorted(set(self._packages.get(top_level, ()))))

    def version(self, distribution: str) -> str:
        if self._versions is not None:
            return self._versions.get(distribution, NOT_INSTALLED)
        if distribution not in self._version_memo:
            try:
                self._version_memo[distribution] = importlib.metadata.version(distribution)
            except importlib.metadata.PackageNotFoundError:
                self._version_memo[distribution] = NOT_INSTALLED
        return self._version_memo[distribution]

    def versions_for(self, top_level_names: Iterable[str]) -> dict[str, str]:
        """Distribution -> version for the given imports; an import that no installed
        distribution provides appears under its own name as ``"not installed"``, so
        installing it later changes the hash."""
        result: dict[str, str] = {}
        for top in top_level_names:
            distributions = self.distributions_for(top)
            if not distributions:
                result.setdefault(top, NOT_INSTALLED)
            for distribution in distributions:
                result[distribution] = self.version(distribution)
        return dict(sorted(result.items()))


@cache
def _installed_index() -> DistributionIndex:
    return DistributionIndex()


def check_extra_inputs(extra: Mapping[str, str]) -> dict[str, str]:
    """Validate plugin-provided infrastructure inputs: string keys and string values."""
    for key, value in extra.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise PluginError(
                f"infrastructure-hash input {key!r} = {value!r} is not a string pair; "
                "a btbuild_infra_inputs hook must return a mapping of str to str"
            )
    return dict(sorted(extra.items()))


def infra_document(distributions: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, object]:
    """Everything the infrastructure hash covers, as one JSON document (shown by explain)."""
    return {
        "python": python_minor(),
        "scheme": HASH_SCHEME_VERSION,
        "distributions": dict(sorted(distributions.items())),
        "extra": check_extra_inputs(extra),
    }


def infra_hash(distributions: Mapping[str, str], extra: Mapping[str, str]) -> str:
    return hash_json(infra_document(distributions, extra))
