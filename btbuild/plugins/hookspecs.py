"""Every hook btbuild calls, in one place, grouped by the phase that calls it.

A plugin is a module (or object) whose functions carry :data:`hookimpl` and are named after
one of the specifications below. Implementations may accept any subset of a hook's
parameters, in any order, by name. Any function whose name starts with ``btbuild_`` is taken
as a hook implementation, marked or not, so a misspelled name fails loudly at load time
instead of being silently ignored.

Collecting hooks (``btbuild_root_sources``, ``btbuild_infra_inputs``,
``btbuild_check_options``, ``btbuild_result_validators``) call *every* implementation in
registration order — built-ins, then installed ``btbuild`` entry points, then the
``[workspace] plugins`` list — and combine the results; none of them stops at the first
result. Every hook may ask for ``config`` (a :class:`~btbuild.plugins.config.PluginConfig`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from datetime import date

    from btbuild.execution.executors import Executor
    from btbuild.plugins.config import PluginConfig
    from btbuild.plugins.sources import RootSource
    from btbuild.plugins.validators import ResultValidator
    from btbuild.storage.registry import BackendSpec

PROJECT = "btbuild"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# -------------------------------------------------------------------------------------------
# Configuration: once per process, right after every plugin is registered.
# -------------------------------------------------------------------------------------------


@hookspec
def btbuild_configure(config: PluginConfig) -> None:
    """Read and validate this plugin's settings.

    Called once, after all plugins are registered and checked, before any other hook.
    Raise :class:`btbuild.errors.ConfigError` (``config.error(name, message)`` builds one
    naming the BUILD.toml) for a bad ``[plugin.<name>]`` table.

    :param config: frozen value with ``root`` (the workspace directory), ``build_file``
        (the root BUILD.toml) and ``settings`` (plugin short name -> its ``[plugin.<name>]``
        table), e.g. ``config.settings_for("market")["users"]``.
    """


# -------------------------------------------------------------------------------------------
# Storage: when the session opens the action cache.
# -------------------------------------------------------------------------------------------


@hookspec
def btbuild_storage_backends(config: PluginConfig) -> Sequence[BackendSpec] | None:
    """Provide storage backends, selected by ``[storage] backend = "<name>"``.

    Called once per session, when it first opens the action cache. Return :class:`btbuild.storage.registry.BackendSpec` values: the name, the other keys its
    ``[storage]`` table may hold, and ``open(table)``, which validates its own table (raise
    ``table.error(key, message)`` for a bad value: one line naming BUILD.toml, the line and
    the key) and returns a :class:`btbuild.storage.base.Backend` (implement the primitives of
    btbuild/storage/primitives.py; the commit protocol is inherited). The built-in memory,
    SQLite and Firestore backends come from btbuild/storage/plugin.py through this hook. Two
    plugins providing the same name is an error.

    :param config: the plugin configuration (see ``btbuild_configure``).
    :return: a list of ``BackendSpec`` (or None).
    """


# -------------------------------------------------------------------------------------------
# Execution: when ``btbuild build`` picks its executor (``--executor NAME``).
# -------------------------------------------------------------------------------------------


@hookspec
def btbuild_executors(config: PluginConfig) -> Sequence[Executor] | None:
    """Provide executors, selected by ``btbuild build --executor <name>``.

    Return instances of :class:`btbuild.execution.executors.Executor`: a ``name``, a one-line
    ``description``, optionally ``check(workspace, backend, request)`` (refuse a build before
    it is planned, with a one-line error) and ``open(run)``, a context manager giving
    ``submit(group) -> Future[list[CellOutcome]]`` (or None: run the groups inline). Whatever
    runs a group calls :func:`btbuild.execution.runner.run_group` in an
    :class:`~btbuild.execution.environment.Environment` (``Environment.of(run.context)``, once
    per process); leases, compare-and-set commits and give-backs are the runner's, so every
    executor keeps the build's guarantees. The built-in ``local`` and ``pubsub`` executors
    come from btbuild/execution/plugin.py through this hook. Two plugins providing the same
    name is an error.

    :param config: the plugin configuration (see :func:`btbuild_configure`).
    :return: a list of :class:`~btbuild.execution.executors.Executor` instances (or ``None``).
    """


# -------------------------------------------------------------------------------------------
# Root data: when the session needs the sources (analysis, execution, the fabricator).
# -------------------------------------------------------------------------------------------


@hookspec
def btbuild_root_sources(config: PluginConfig) -> Sequence[RootSource] | None:
    """Return the root data sources this plugin provides.

    Called once per session, after :func:`btbuild_configure`. All results are collected;
    two sources with the same name are an error naming both plugins.

    :param config: the plugin configuration (see :func:`btbuild_configure`).
    :return: a list of :class:`~btbuild.plugins.sources.RootSource` instances (or ``None``).
    """


@hookspec
def btbuild_segment_predicates(config: PluginConfig) -> Mapping[str, Callable[[Any], bool]] | None:
    """Return user-segment predicates by name, for ``[segment.NAME]`` tables that say
    ``predicate = "NAME"`` instead of ``field`` + ``values``.

    Called once per process that runs or simulates a segment target. All results are merged;
    the same name from two plugins is an error naming both. A predicate receives the user's
    record of the segment's ``source`` for the cell's date (``None`` when the user has none)
    and returns True for users of the segment. It must be deterministic: the segment's
    ``version`` (not the predicate's code) is part of its targets' declaration hash, so bump
    it when the predicate changes behaviour.

    :param config: the plugin configuration (see :func:`btbuild_configure`).
    :return: ``{predicate name: callable(record) -> bool}`` (or ``None``).
    """


# -------------------------------------------------------------------------------------------
# Hashing: when the infrastructure hash is computed.
# -------------------------------------------------------------------------------------------


@hookspec
def btbuild_infra_inputs(config: PluginConfig) -> Mapping[str, str] | None:
    """Return extra named inputs of the infrastructure hash.

    Called once per session. All results are merged into one mapping; changing any value
    re-runs every cell (like changing the epoch). The same key from two plugins is an error
    naming both, unless both give the same value.

    :param config: the plugin configuration (see :func:`btbuild_configure`).
    :return: ``{name: value}`` with string keys and string values (or ``None``).
    """


# -------------------------------------------------------------------------------------------
# Checks: when a target's result validators are built, before a cell runs.
# -------------------------------------------------------------------------------------------


@hookspec
def btbuild_check_options(config: PluginConfig) -> Mapping[str, str] | None:
    """Declare the keys a target's ``checks`` table may use for this plugin's validators.

    Called once per session. All results are merged; a ``checks`` key no plugin declares is
    an error naming the target.

    :return: ``{key: one-line description}`` (or ``None``).
    """


@hookspec
def btbuild_result_validators(
    target_name: str, kind: str, overrides: Mapping[str, object], config: PluginConfig
) -> Sequence[ResultValidator] | None:
    """Return fresh validators for one cell of ``target_name``.

    Called once per cell about to run; all results are collected and every validator sees
    every item (see :class:`~btbuild.plugins.validators.ResultValidator`). Raise
    :class:`btbuild.errors.ConfigError` naming the target for a bad override value.

    :param target_name: the target's name (unique in the workspace).
    :param kind: ``"per_user"`` or ``"per_date"``.
    :param overrides: the target's ``checks`` table from BUILD.toml, e.g.
        ``{"null_density": 0.9, "flatline": False}``; keys were already checked against
        :func:`btbuild_check_options`.
    :param config: the plugin configuration.
    :return: a list of validators (or ``None``).
    """


# -------------------------------------------------------------------------------------------
# Commits: after a cell's new result is durable, in the process that committed it.
# -------------------------------------------------------------------------------------------


@hookspec
def btbuild_cell_committed(
    target: str,
    label: str,
    date: date,
    result_hash: str,
    changed: bool,
    read_result: Callable[[], Any],
    config: PluginConfig,
) -> None:
    """React to a committed cell (alerts, notifications, audit).

    Called once per committed cell, by whichever process committed it (the build itself, a
    ``--jobs`` worker process or a ``btbuild worker`` on Pub/Sub), after the commit is
    durable: a reader started now sees the new result. Not called for cells that were
    skipped, for the parts of a sharded cell (only for the combined cell), nor for a
    cosmetic adoption (no new result). Every implementation is called; an exception does not
    undo the commit: the cell is reported as ran with the error, and the build exits 1.

    :param target: the target's name (unique in the workspace), e.g. ``"risk_increase"``.
    :param label: its label, e.g. ``"//alerts:risk_increase"``.
    :param date: the cell's date.
    :param result_hash: the committed result's hash.
    :param changed: False when the result is identical to the one it replaced (same hash),
        True for a first result or a different one.
    :param read_result: call it to read the committed result (a dict user id -> value for
        ``per_user``, the value for ``per_date``); nothing is read unless you call it.
    :param config: the plugin configuration.
    """
