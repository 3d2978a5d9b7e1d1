from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from btbuild.errors import ConfigError, PluginError
from btbuild.plugins import MemorySource, load_plugins, read_plugin_settings
from btbuild.plugins.manager import BUILTIN_PLUGINS


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


OPTIONS_PLUGIN = """
from btbuild.plugins import hookimpl

@hookimpl
def btbuild_check_options():
    return {{"{key}": "test option"}}
"""


def test_registration_order_builtins_entry_points_then_workspace(tmp_path, syspath_dir):
    write(syspath_dir / "bt_ep_order_plugin.py", OPTIONS_PLUGIN.format(key="from_entry_point"))
    write(
        syspath_dir / "bt_ep_order-1.0.dist-info/METADATA",
        "Metadata-Version: 2.1\nName: bt-ep-order\nVersion: 1.0\n",
    )
    write(
        syspath_dir / "bt_ep_order-1.0.dist-info/entry_points.txt",
        "[btbuild]\nep_order = bt_ep_order_plugin\n",
    )
    write(tmp_path / "plugins/second.py", OPTIONS_PLUGIN.format(key="from_second"))
    write(tmp_path / "plugins/first.py", OPTIONS_PLUGIN.format(key="from_first"))

    plugins = load_plugins(tmp_path, ["plugins.second", "plugins.first"], {})

    assert plugins.names == (*BUILTIN_PLUGINS, "ep_order", "plugins.second", "plugins.first")
    called = [name for name, _ in plugins.call_each("btbuild_check_options")]
    assert called == [
        "btbuild.plugins.builtin_checks",
        "ep_order",
        "plugins.second",
        "plugins.first",
    ]
    assert {"flatline", "from_entry_point", "from_first", "from_second"} <= set(
        plugins.check_options()
    )


def test_entry_points_can_be_skipped(tmp_path, syspath_dir):
    write(syspath_dir / "bt_ep_skip_plugin.py", OPTIONS_PLUGIN.format(key="x"))
    write(
        syspath_dir / "bt_ep_skip-1.0.dist-info/METADATA",
        "Metadata-Version: 2.1\nName: bt-ep-skip\nVersion: 1.0\n",
    )
    write(
        syspath_dir / "bt_ep_skip-1.0.dist-info/entry_points.txt",
        "[btbuild]\nep_skip = bt_ep_skip_plugin\n",
    )
    assert "ep_skip" in load_plugins(tmp_path, [], {}).names
    assert "ep_skip" not in load_plugins(tmp_path, [], {}, entry_points=False).names


def test_broken_entry_point_names_it(tmp_path, syspath_dir):
    write(
        syspath_dir / "bt_ep_broken-1.0.dist-info/METADATA",
        "Metadata-Version: 2.1\nName: bt-ep-broken\nVersion: 1.0\n",
    )
    write(
        syspath_dir / "bt_ep_broken-1.0.dist-info/entry_points.txt",
        "[btbuild]\nep_broken = bt_no_such_module_xyz\n",
    )
    with pytest.raises(PluginError, match="installed plugin 'ep_broken'.*bt_no_such_module_xyz"):
        load_plugins(tmp_path, [], {})


@pytest.mark.parametrize(
    ("source", "hook"),
    [
        (
            "from btbuild.plugins import hookimpl\n@hookimpl\ndef btbuild_root_source():\n    return []\n",
            "btbuild_root_source",
        ),
        (
            "def btbuild_infra_input():\n    return {}\n",
            "btbuild_infra_input",
        ),  # unmarked: still caught
        (
            "from btbuild.plugins import hookimpl\n@hookimpl\ndef root_sources():\n    return []\n",
            "root_sources",
        ),
    ],
)
def test_misspelled_hook_fails_loudly(tmp_path, source, hook):
    write(tmp_path / "plugins/typo.py", source)
    with pytest.raises(
        PluginError, match=rf"plugin 'plugins.typo' implements unknown hook '{hook}'"
    ) as info:
        load_plugins(tmp_path, ["plugins.typo"], {}, entry_points=False)
    assert "BUILD.toml" in str(info.value)
    if hook != "root_sources":
        assert "did you mean" in str(info.value)


def test_hookimpl_asking_for_unknown_argument_fails(tmp_path):
    write(tmp_path / "plugins/badarg.py", "def btbuild_root_sources(confg):\n    return []\n")
    with pytest.raises(PluginError, match="plugins.badarg.*confg"):
        load_plugins(tmp_path, ["plugins.badarg"], {}, entry_points=False)


def test_workspace_module_by_relative_name_and_package(tmp_path):
    write(
        tmp_path / "plugins/market_a.py",
        "from btbuild.plugins import MemorySource, hookimpl\n"
        "@hookimpl\ndef btbuild_root_sources():\n    return [MemorySource('alpha', 'date')]\n",
    )
    write(
        tmp_path / "extra/__init__.py",
        "def btbuild_root_sources():\n"
        "    from btbuild.plugins import MemorySource\n    return [MemorySource('beta', 'user')]\n",
    )
    plugins = load_plugins(tmp_path, ["plugins.market_a", "extra"], {}, entry_points=False)
    assert list(plugins.root_sources()) == ["alpha", "beta"]
    assert not any(name.startswith("plugins.") for name in sys.modules if "market_a" in name)


def test_two_workspaces_with_same_plugin_name_do_not_collide(tmp_path):
    for name in ("one", "two"):
        write(
            tmp_path / name / "plugins/src.py",
            "from btbuild.plugins import MemorySource\n"
            f"def btbuild_root_sources():\n    return [MemorySource('{name}', 'date')]\n",
        )
    first = load_plugins(tmp_path / "one", ["plugins.src"], {}, entry_points=False)
    second = load_plugins(tmp_path / "two", ["plugins.src"], {}, entry_points=False)
    assert list(first.root_sources()) == ["one"]
    assert list(second.root_sources()) == ["two"]


def test_installed_module_fallback(tmp_path):
    plugins = load_plugins(
        tmp_path, ["btbuild.plugins.market"], {"market": {"users": 3}}, entry_points=False
    )
    assert set(plugins.root_sources()) == {
        "prices",
        "benchmarks",
        "insights",
        "portfolio",
        "trades",
    }


def test_missing_module_is_one_line_error(tmp_path):
    with pytest.raises(PluginError) as info:
        load_plugins(
            tmp_path, ["plugins.nope"], {}, build_file=tmp_path / "BUILD.toml", entry_points=False
        )
    message = str(info.value)
    assert "\n" not in message
    assert (
        "BUILD.toml" in message
        and "'plugins.nope' not found" in message
        and "plugins/nope.py" in message
    )


def test_import_error_names_module_and_file(tmp_path):
    write(tmp_path / "plugins/boom.py", "import btbuild_missing_dependency_q\n")
    write(tmp_path / "plugins/zero.py", "x = 1 / 0\n")
    with pytest.raises(
        PluginError,
        match=r"BUILD.toml: plugin 'plugins.boom' \(plugins/boom.py\) failed to import: ModuleNotFoundError: No module named 'btbuild_missing_dependency_q'",
    ):
        load_plugins(tmp_path, ["plugins.boom"], {}, entry_points=False)
    with pytest.raises(
        PluginError,
        match=r"plugin 'plugins.zero' \(plugins/zero.py\) failed to import: ZeroDivisionError",
    ):
        load_plugins(tmp_path, ["plugins.zero"], {}, entry_points=False)


def test_bad_module_name_and_double_registration(tmp_path):
    with pytest.raises(PluginError, match="not a dotted module name"):
        load_plugins(tmp_path, ["plugins/market.py"], {}, entry_points=False)
    with pytest.raises(PluginError, match="registered twice"):
        load_plugins(
            tmp_path, ["btbuild.plugins.market", "btbuild.plugins.market"], {}, entry_points=False
        )


def test_duplicate_source_names_name_both_plugins(tmp_path):
    for name in ("a", "b"):
        write(
            tmp_path / f"plugins/{name}.py",
            "from btbuild.plugins import MemorySource\n"
            "def btbuild_root_sources():\n    return [MemorySource('prices', 'date')]\n",
        )
    plugins = load_plugins(tmp_path, ["plugins.a", "plugins.b"], {}, entry_points=False)
    with pytest.raises(
        PluginError, match="'prices' is provided by two plugins: 'plugins.a' and 'plugins.b'"
    ):
        plugins.root_sources()


def test_source_values_are_checked(tmp_path):
    write(tmp_path / "plugins/odd.py", "def btbuild_root_sources():\n    return ['prices']\n")
    write(
        tmp_path / "plugins/scope.py",
        "from btbuild.plugins import MemorySource\n"
        "def btbuild_root_sources():\n    return [MemorySource('p', 'month')]\n",
    )
    with pytest.raises(PluginError, match="plugin 'plugins.odd'.*RootSource"):
        load_plugins(tmp_path, ["plugins.odd"], {}, entry_points=False).root_sources()
    with pytest.raises(PluginError, match="scope 'month'"):
        load_plugins(tmp_path, ["plugins.scope"], {}, entry_points=False).root_sources()


def test_infra_inputs_merge_and_conflict(tmp_path):
    write(
        tmp_path / "plugins/i1.py",
        "def btbuild_infra_inputs(config):\n    return {'python': '3.11', 'root': config.root.name}\n",
    )
    write(
        tmp_path / "plugins/i2.py",
        "def btbuild_infra_inputs():\n    return {'gpu': 'none', 'python': '3.11'}\n",
    )
    write(
        tmp_path / "plugins/i3.py", "def btbuild_infra_inputs():\n    return {'python': '3.12'}\n"
    )
    merged = load_plugins(
        tmp_path, ["plugins.i1", "plugins.i2"], {}, entry_points=False
    ).infra_inputs()
    assert merged == {"gpu": "none", "python": "3.11", "root": tmp_path.name}
    with pytest.raises(
        PluginError,
        match="'python' is given different values by plugins 'plugins.i1' and 'plugins.i3'",
    ):
        load_plugins(tmp_path, ["plugins.i1", "plugins.i3"], {}, entry_points=False).infra_inputs()


def test_configure_sees_frozen_settings_once(tmp_path, syspath_dir):
    write(syspath_dir / "bt_cfg_log.py", "calls = []\n")
    write(
        tmp_path / "plugins/cfg.py",
        "import bt_cfg_log\n"
        "def btbuild_configure(config):\n    bt_cfg_log.calls.append(dict(config.settings_for('cfg')))\n"
        "    config.settings_for('cfg')['users'] = 1\n",
    )
    with pytest.raises(
        PluginError, match="plugins.cfg.*btbuild_configure: TypeError: 'mappingproxy'"
    ):
        load_plugins(tmp_path, ["plugins.cfg"], {"cfg": {"users": 2000}}, entry_points=False)
    import bt_cfg_log

    assert bt_cfg_log.calls == [{"users": 2000}]


def test_exception_in_hook_is_a_plugin_error(tmp_path):
    write(
        tmp_path / "plugins/crash.py",
        "def btbuild_root_sources():\n    raise RuntimeError('disk on fire')\n",
    )
    plugins = load_plugins(tmp_path, ["plugins.crash"], {}, entry_points=False)
    with pytest.raises(
        PluginError,
        match="plugin 'plugins.crash' failed in btbuild_root_sources: RuntimeError: disk on fire",
    ):
        plugins.root_sources()


def test_bad_market_settings_name_the_build_file(tmp_path):
    with pytest.raises(ConfigError, match=r"BUILD.toml: \[plugin.market\] unknown setting 'user'"):
        load_plugins(
            tmp_path, ["btbuild.plugins.market"], {"market": {"user": 5}}, entry_points=False
        )
    with pytest.raises(ConfigError, match=r"\[plugin.market\] users = 'many' is invalid"):
        load_plugins(
            tmp_path, ["btbuild.plugins.market"], {"market": {"users": "many"}}, entry_points=False
        )


def test_read_plugin_settings(tmp_path):
    build = write(
        tmp_path / "BUILD.toml",
        '[workspace]\nname = "w"\n[plugin.market]\nusers = 20\nrevisions = { "2024-01-05" = 2 }\n',
    )
    assert read_plugin_settings(build) == {"market": {"users": 20, "revisions": {"2024-01-05": 2}}}
    write(tmp_path / "BUILD.toml", '[workspace]\nname = "w"\n[plugin]\nmarket = 3\n')
    with pytest.raises(ConfigError, match="BUILD.toml"):
        read_plugin_settings(build)


def test_memory_source_roundtrip():
    from datetime import date

    source = MemorySource("p", "user", {date(2024, 1, 2): {"u2": 2, "u1": 1}})
    before = source.fingerprint(date(2024, 1, 2))
    assert list(source.users(date(2024, 1, 2))) == [("u1", 1), ("u2", 2)]
    source.set(date(2024, 1, 2), {"u1": 1})
    assert source.fingerprint(date(2024, 1, 2)) != before
    with pytest.raises(PluginError, match="has no data for 2024-01-03"):
        list(source.users(date(2024, 1, 3)))
    with pytest.raises(PluginError, match="scope 'user'"):
        source.load(date(2024, 1, 2))


def test_installed_module_with_missing_dependency_is_not_reported_as_missing(tmp_path, syspath_dir):
    write(syspath_dir / "bt_needs_dep.py", "import bt_absent_dependency_k\n")
    with pytest.raises(
        PluginError,
        match="plugin 'bt_needs_dep' failed to import: ModuleNotFoundError: No module named 'bt_absent_dependency_k'",
    ):
        load_plugins(tmp_path, ["bt_needs_dep"], {}, entry_points=False)


def test_hook_results_are_type_checked(tmp_path):
    write(tmp_path / "plugins/shape.py", "def btbuild_infra_inputs():\n    return {'n': 1}\n")
    write(tmp_path / "plugins/notlist.py", "def btbuild_root_sources():\n    return 'prices'\n")
    with pytest.raises(
        PluginError,
        match="plugin 'plugins.shape': btbuild_infra_inputs must map str to str, got 'n': 1",
    ):
        load_plugins(tmp_path, ["plugins.shape"], {}, entry_points=False).infra_inputs()
    with pytest.raises(PluginError, match="btbuild_root_sources must return a list, got str"):
        load_plugins(tmp_path, ["plugins.notlist"], {}, entry_points=False).root_sources()


def test_a_workspace_plugin_never_runs_from_a_stale_pycache(tmp_path):
    """Its code is part of the keys: an edit keeping the size within the same second (or a
    copy keeping the mtime) must not run the old bytecode (btbuild/execution/bytecode.py)."""
    import importlib.util
    import os
    import py_compile

    plugin = tmp_path / "plugins/rate.py"
    write(plugin, OPTIONS_PLUGIN.format(key="old_key"))
    py_compile.compile(
        str(plugin),
        cfile=importlib.util.cache_from_source(str(plugin)),
        invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP,
    )
    stat = plugin.stat()
    write(plugin, OPTIONS_PLUGIN.format(key="new_key"))
    os.utime(plugin, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    plugins = load_plugins(tmp_path, ["plugins.rate"], {}, entry_points=False)
    module = plugins.pm.get_plugin("plugins.rate")
    assert "new_key" in str(module.btbuild_check_options.__code__.co_consts)
